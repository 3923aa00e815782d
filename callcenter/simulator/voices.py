"""What the simulated people sound like: deterministic, speech-like 8 kHz audio.

Pure and fast enough for the demo: a voice is a few utterances synthesised once per
process (a pitch-varying wavetable per vowel under a syllable envelope, with short
noise bursts for consonants) and reused; a :class:`Conversation` strings them into
alternating caller/agent turns for a bridge, seeded by the bridge id so a run replays
the same audio.  Nothing is read from disk: prompts get a synthetic voice of their
recorded length.
"""
from __future__ import annotations

import math
import random
import zlib
from array import array
from dataclasses import dataclass
from functools import lru_cache

RATE = 8000
_TABLE = 256
# (F1, F2, F3) Hz of a few vowels: enough for a speech-like spectrum
_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


@dataclass(frozen=True)
class Voice:
    name: str
    pitch: float  # mean fundamental, Hz
    level: int    # peak amplitude (16-bit)


CALLER = Voice("caller", 210.0, 9000)
AGENT = Voice("agent", 125.0, 8000)
PROMPT = Voice("prompt", 180.0, 10000)


@lru_cache(maxsize=None)
def _vowel_table(vowel: int, pitch: float) -> array:
    """One pitch period of a vowel: harmonics weighted by three formant resonances."""
    formants = _VOWELS[vowel]
    amps = []
    for k in range(1, int(3400 // pitch) + 1):
        f = k * pitch
        amps.append(sum(1.0 / (1.0 + ((f - fc) / 90.0) ** 2) for fc in formants) / k ** 0.5)
    peak = sum(amps)
    return array("f", (sum(a * math.sin(2 * math.pi * (k + 1) * n / _TABLE) for k, a in enumerate(amps)) / peak
                       for n in range(_TABLE)))


def synthesize(voice: Voice, seconds: float, seed: int) -> array:
    """``seconds`` of speech-like 16-bit samples: words of 2-5 syllables, short pauses."""
    rng = random.Random(seed)
    n_total = int(round(seconds * RATE))
    out = array("h", bytes(2 * n_total))
    pos = 0
    while pos < n_total:
        for _ in range(rng.randint(2, 5)):
            syl = int(RATE * rng.uniform(0.12, 0.24))
            table = _vowel_table(rng.randrange(len(_VOWELS)), voice.pitch)
            f0, glide = voice.pitch * rng.uniform(0.9, 1.15), rng.uniform(-0.25, 0.15)
            noise = int(RATE * rng.uniform(0.0, 0.04))  # consonant onset
            phase = 0.0
            for i in range(min(syl, n_total - pos)):
                x = i / syl
                if i < noise:
                    v = rng.uniform(-0.35, 0.35)
                else:
                    phase = (phase + f0 * (1 + glide * x) * _TABLE / RATE) % _TABLE
                    v = table[int(phase)] * math.sin(math.pi * x) ** 0.6
                out[pos + i] = int(voice.level * v)
            pos += syl
            if pos >= n_total:
                return out
        pos += int(RATE * rng.uniform(0.08, 0.35))  # between words: silence
    return out


@lru_cache(maxsize=None)
def utterances(voice: Voice) -> tuple[array, ...]:
    """The few phrases a simulated person says, made once per process."""
    return tuple(synthesize(voice, secs, zlib.crc32(f"{voice.name}/{i}".encode()))
                 for i, secs in enumerate((1.6, 2.4, 3.1, 1.9)))


@lru_cache(maxsize=64)
def prompt(name: str, seconds: float) -> array:
    """A played sound file (``hello-world``): synthetic speech of its recorded length."""
    return synthesize(PROMPT, seconds, zlib.crc32(name.encode()))


class Conversation:
    """Caller and agent taking turns in a bridge, generated lazily as time passes.

    ``turns`` are ``(start, samples)`` on the simulator clock, never overlapping;
    :meth:`hold_until` keeps the next turn back while a prompt plays into the bridge."""

    def __init__(self, seed: str, start: float):
        self.rng = random.Random(zlib.crc32(seed.encode()))
        self.next_at = start
        self.speaker = 0  # the caller answers the greeting first
        self.turns: list[tuple[float, array]] = []

    def hold_until(self, t: float) -> None:
        self.next_at = max(self.next_at, t)

    def until(self, t: float) -> list[tuple[float, array]]:
        """Every turn starting before ``t`` (made on demand)."""
        while self.next_at < t:
            clip = self.rng.choice(utterances(CALLER if self.speaker == 0 else AGENT))
            self.turns.append((self.next_at, clip))
            self.next_at += len(clip) / RATE + self.rng.uniform(0.3, 1.2)
            self.speaker ^= 1
        return self.turns
