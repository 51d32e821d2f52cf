"""The classroom's browser pages, opened the way a teacher and a student open them: the token in the
address once (it becomes a signed cookie), then the page. Shared by the rounds and rating-round tests."""

from __future__ import annotations

DESKTOP = {"width": 1280, "height": 900}


def open_teacher(browser, url: str, token: str):
    """The teacher's view, signed in with the teacher token, in a context of its own."""
    teacher = browser.new_context(viewport=DESKTOP).new_page()
    teacher.set_default_timeout(60_000)
    teacher.goto(f"{url}/?token={token}")
    teacher.goto(f"{url}/teacher")
    teacher.wait_for_selector("#teacher[data-ready='teacher']")
    return teacher


def open_students(browser, url: str, token: str, n: int) -> list:
    """n students' pages, each in a context of its own (its own cookie, so its own signed id)."""
    students = []
    for _ in range(n):
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/?token={token}")
        page.wait_for_selector(".class-round summary")
        students.append(page)
    return students
