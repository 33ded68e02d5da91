from livi_cli.train import lyrics


def test_fillers_and_annotations_are_dropped():
    assert lyrics.clean("Thank you.") == ""
    assert lyrics.clean("[Music] I walk the line. Thanks for watching!") == "I walk the line."
    assert lyrics.clean("♪ Hold me closer. ♪ Thank you. Tiny dancer") == "Hold me closer. Tiny dancer"
    # A sentence that merely contains "thank you" is a lyric, not filler.
    assert lyrics.clean("Thank you for the music, the songs I'm singing") == "Thank you for the music, the songs I'm singing"


def test_word_repeats_of_three_or_more_collapse():
    assert lyrics.clean("no no no no no way") == "no way"
    assert lyrics.clean("Baby, baby, BABY oh") == "Baby, oh"
    assert lyrics.clean("yeah yeah we go") == "yeah yeah we go"  # two is kept
    assert lyrics.collapse_repeats("la la la", run=4) == "la la la"


def test_word_counting_and_the_keep_rule():
    assert lyrics.count_words("one two, three!") == 3
    assert lyrics.count_words("-- ... !!") == 0
    assert lyrics.count_words("我爱你中国") == 5  # no spaces in Chinese: characters count
    assert lyrics.keep("I walk the line")
    assert not lyrics.keep("walk the line")
    assert lyrics.keep("walk the line", min_words=3)
