"""The FER2013 label set, in the dataset's own order."""

from __future__ import annotations

from .errors import DataError

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Folder and CSV spellings seen in public FER2013 mirrors, mapped to our canonical names.
SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
}

# FER2013's `Usage` column; codes stored in FaceArrays.usage.
TRAINING, PUBLIC_TEST, PRIVATE_TEST = 0, 1, 2
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")


def canonical_emotion(name: str) -> str:
    """Map a class name in any case or usual synonym to its canonical FER2013 name."""
    key = name.strip().lower()
    if key not in SYNONYMS:
        raise DataError(f"unknown emotion class {name!r}; expected one of {', '.join(EMOTIONS)} (or a synonym)")
    return SYNONYMS[key]
