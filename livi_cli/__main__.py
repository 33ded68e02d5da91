from livi_cli.cli.app import main

main()
