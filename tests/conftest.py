"""Shared fixtures: tiny random models through the real loading code, synthetic audio, isolated env."""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
