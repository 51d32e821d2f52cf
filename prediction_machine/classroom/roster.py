"""Who is in the class, what each has done, and what the teacher asked everyone to open.

The roster keeps, per student key (the web layer's signed client id): a short public name that
never reveals the key, an optional nickname, when they were last seen, and their progress per
section (tours finished, questions answered right out of asked). All in memory, bounded: the
longest-unseen student is forgotten first. It is written to disk only when the teacher exports it.

A "push" is a link the teacher shows everyone: each student's page sees a newer push number
and opens it.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

PRESENT_S = 30.0  # a student whose page asked within this many seconds counts as present


@dataclass
class Progress:
    tour_done: bool = False
    questions_right: int = 0
    questions_total: int = 0


@dataclass
class Student:
    public: str  # e.g. "s-3f9a1c02": stable for one key, and says nothing about it
    nickname: str = ""
    first_seen: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    progress: dict[str, Progress] = field(default_factory=dict)


@dataclass(frozen=True)
class Push:
    number: int
    link: str
    at: float


class Roster:
    """The class's students (at most `size`), their progress (at most `sections` each) and the latest push."""

    def __init__(self, key: bytes, size: int = 500, sections: int = 32):
        self.key, self.size, self.sections = key, size, sections
        self.lock = threading.Lock()
        self.students: OrderedDict[str, Student] = OrderedDict()
        self.push: Push | None = None

    def public_name(self, student: str) -> str:
        """A short name for the teacher's screen: an HMAC of the key, so it cannot be turned back into it."""
        return "s-" + hmac.new(self.key, student.encode(), hashlib.sha256).hexdigest()[:8]

    def seen(self, student: str) -> Student:
        with self.lock:
            s = self.students.get(student)
            if s is None:
                s = self.students[student] = Student(self.public_name(student))
            s.last_seen = time.time()
            self.students.move_to_end(student)
            while len(self.students) > self.size:
                self.students.popitem(last=False)
            return s

    def name(self, student: str, nickname: str) -> None:
        self.seen(student).nickname = nickname

    def record(self, student: str, section: str, progress: Progress) -> None:
        """Store a student's progress in one section; a section past `sections` replaces nothing."""
        s = self.seen(student)
        with self.lock:
            if section in s.progress or len(s.progress) < self.sections:
                s.progress[section] = progress

    def show(self, link: str) -> Push:
        with self.lock:
            self.push = Push((self.push.number + 1) if self.push else 1, link, time.time())
            return self.push

    def everyone(self) -> list[Student]:
        with self.lock:
            return list(self.students.values())

    def present(self, within_s: float = PRESENT_S) -> list[Student]:
        now = time.time()
        return [s for s in self.everyone() if now - s.last_seen <= within_s]
