"""The line where each contact first appeared in a file, for the duplicate-row rule: one entry
per distinct contact of the file, for files of a million rows and more.

A dict of int to int costs about 100 bytes an entry (the two int objects, the entry, the
index): 100 MB of a worker's memory for a million-row file. `FirstLines` keeps the same map in
two flat arrays (open addressing with linear probing): 12 bytes a slot and 1.5 to 3 slots an
entry, 25 MB for a million entries; a look-up costs about a microsecond.
"""

from array import array

_EMPTY = -1
_MIN_SLOTS = 1024
_SPREAD = 0x9E3779B97F4A7C15  # Fibonacci hashing: sequential ids land far apart
_MASK64 = (1 << 64) - 1


class FirstLines:
    """`id -> line` for ids that are non-negative integers (database ids) and lines up to
    2**31 - 1. Only grows: entries are never removed."""

    def __init__(self):
        self._size = 0
        self._allocate(_MIN_SLOTS)

    def _allocate(self, slots):
        self._bits = slots.bit_length() - 1
        self._mask = slots - 1
        self._keys = array("q", [_EMPTY]) * slots
        self._lines = array("i", [0]) * slots

    def __len__(self):
        return self._size

    def _slot(self, key):
        keys, mask = self._keys, self._mask
        slot = ((key * _SPREAD) & _MASK64) >> (64 - self._bits)
        while True:
            found = keys[slot]
            if found in (key, _EMPTY):
                return slot
            slot = (slot + 1) & mask

    def get(self, key, default=None):
        slot = self._slot(key)
        return self._lines[slot] if self._keys[slot] == key else default

    def __contains__(self, key):
        return self._keys[self._slot(key)] == key

    def setdefault(self, key, line):
        """The line `key` first appeared on: `line` if it is new (and now remembered)."""
        if key < 0:
            raise ValueError(f"FirstLines holds non-negative ids, not {key}.")
        slot = self._slot(key)
        if self._keys[slot] == key:
            return self._lines[slot]
        self._keys[slot] = key
        self._lines[slot] = line
        self._size += 1
        if self._size * 3 > len(self._keys) * 2:  # over two thirds full: probes get long
            self._grow()
        return line

    def _grow(self):
        keys, lines = self._keys, self._lines
        self._allocate(len(keys) * 2)
        for key, line in zip(keys, lines, strict=True):
            if key != _EMPTY:
                slot = self._slot(key)
                self._keys[slot] = key
                self._lines[slot] = line
