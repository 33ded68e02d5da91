"""Clean-up of Whisper transcripts before they become targets.

Whisper hallucinates on music: stock phrases from subtitle data ("Thank you.", "Thanks for
watching!") on instrumental passages, and loops of one word. Both would pull unrelated songs
together in the target space, so filler sentences are dropped, runs of a word repeated 3 or more
times collapse to one occurrence, and windows left with too few words are discarded.
"""
from __future__ import annotations

import re
import unicodedata

MIN_WORDS = 4  # the paper drops windows with fewer words
REPEAT_RUN = 3  # a word repeated this many times in a row collapses to one

# Normalised (lower case, no punctuation) sentences Whisper is known to invent on non-speech audio.
FILLERS = frozenset({
    "thank you", "thank you very much", "thank you so much", "thanks", "thanks for watching",
    "thank you for watching", "thanks for watching and see you next time", "please subscribe",
    "please like and subscribe", "subscribe", "like and subscribe", "see you next time", "bye", "bye bye",
    "you", "music", "applause", "laughter", "silence", "instrumental", "outro", "intro",
    "subtitles by the amara org community", "subtitles by the amaraorg community", "transcription by castingwords",
    "sous titres réalisés para la communauté d amara org", "sous titrage st 501", "untertitel der amara org community",
    "untertitel im auftrag des zdf für funk 2017", "amara org", "ご視聴ありがとうございました", "字幕by索兰娅",
    "продолжение следует",
})
_BRACKETS = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|[♪♫🎵🎶]+")
_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(text.split())


def _is_filler(sentence: str) -> bool:
    return _norm(sentence) in FILLERS


def drop_fillers(text: str) -> str:
    text = _BRACKETS.sub(" ", text)  # [Music], (applause), ♪ … ♪ annotations
    kept = [s.strip() for s in _SENTENCE.findall(text) if s.strip() and not _is_filler(s)]
    return " ".join(kept)


def collapse_repeats(text: str, run: int = REPEAT_RUN) -> str:
    """'no no no no' → 'no' (runs of `run` or more equal words, compared without case/punctuation)."""
    words = text.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        j = i + 1
        key = _norm(words[i])
        while j < len(words) and key and _norm(words[j]) == key:
            j += 1
        out.extend(words[i:i + 1] if j - i >= run else words[i:j])
        i = j
    return " ".join(out)


def count_words(text: str) -> int:
    """Whitespace words with a letter or digit; Chinese/Japanese characters count one each (no spaces there)."""
    n = 0
    for token in text.split():
        cjk = len(_CJK.findall(token))
        rest = _CJK.sub("", token)
        n += cjk + (1 if any(ch.isalnum() for ch in rest) else 0)
    return n


def clean(text: str, run: int = REPEAT_RUN) -> str:
    return " ".join(collapse_repeats(drop_fillers(text), run).split())


def keep(text: str, min_words: int = MIN_WORDS) -> bool:
    return count_words(text) >= min_words
