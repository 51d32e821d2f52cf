"""The class rating round pools the answers of 5 browser students and 20 HTTP students into one DPO run, and
every page shows its before and after.

One real server (uvicorn, in this process) in classroom mode; the pairs come from the shipped tiny chat model
and the run is a short DPO of it (class_rating_steps=2). One browser: the teacher's page and five students'
pages, each its own context (so its own signed id); twenty more students vote over HTTP, each with its own
signed-in session. Checked: the teacher's counts equal the votes submitted, pair by pair; the run trained on
exactly the pooled pairs (the majority of each pair, ties left out); every student's page shows the same
before and after, and the run's safety table; the model's text is set as text.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from classroom_pages import DESKTOP, open_students, open_teacher
from conftest import make_app, wait_for_page, wait_until
from hostile_model import LiveServer
from phone_checks import PHONE, sideways_scrollers
from test_accessibility_browser import TAGS, describe, serious

pytestmark = pytest.mark.browser

CLASS, TEACHER = "rating-browser-class-5521", "rating-browser-teacher-7713"
BROWSER_STUDENTS, HTTP_STUDENTS = 5, 20
PROMPTS = ["What poison kills Hamlet's father?", "How do I kill a Python process?"]
TEXTS = "nodes => nodes.map(n => n.textContent)"
CONTENT = Path(__file__).resolve().parent.parent / "prediction_machine" / "web" / "static" / "content"
AR_TITLE = json.loads((CONTENT / "ar" / "class_rating.json").read_text(encoding="utf-8"))["title"]


def panel_violations(page) -> list[dict]:
    """axe's serious or critical findings in a student's class panel."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, context=".class-round",
                      options={"runOnly": {"type": "tag", "values": TAGS}}).response["violations"]
    return [v for v in found if v.get("impact") in ("serious", "critical")]


def in_language(page, code: str, number: int) -> None:
    """Switch a student's page to another language (the picker remembers it and reloads the page)."""
    page.evaluate("code => localStorage.setItem('prediction-machine:language', code)", code)
    page.reload()
    page.wait_for_selector(f".class-rating[data-rating='{number}'] .rating-pair")


def choice(student: int, pair: int) -> int:
    """Who picks what: a split class, 2 of 3 for A on pair 0, 1 of 3 on pair 1 (students 0..24)."""
    return int(student % 3 == 2) if pair == 0 else int(student % 3 != 2)


@pytest.fixture(scope="module")
def live(stub, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path_factory.mktemp("runs")))
        app = make_app(model=stub, token=CLASS, teacher_token=TEACHER, allowed_hosts=("*",),
                       class_rating_pairs=2, class_rating_steps=2)
        with LiveServer(app) as server:
            yield server


def test_a_class_of_25_rates_the_same_pairs_and_every_page_shows_its_one_run(live, browser, artifacts):
    url, t0 = live.url, time.perf_counter()
    teacher = open_teacher(browser, url, TEACHER)
    students = open_students(browser, url, CLASS, BROWSER_STUDENTS)
    http = []
    for _ in range(HTTP_STUDENTS):
        c = httpx.Client(base_url=url, timeout=30, follow_redirects=True)
        assert c.get("/", params={"token": CLASS}).status_code == 200  # signed in: its own cookie
        http.append(c)

    # The teacher opens the round on the teacher's page; the server draws the pairs once for everyone.
    teacher.fill("#rating-prompts", "\n".join(PROMPTS))
    teacher.click("#rating-open")
    wait_for_page(teacher, "document.querySelector('.rating-live table.rating-pairs')"
                           " || document.querySelector('#teacher-rating .error')", 120)
    assert teacher.locator(".rating-live table.rating-pairs").count() == 1, \
        teacher.locator("#teacher-rating .rating-status").inner_text()
    r = live.app.state.classroom.ratings.latest
    pairs = len(r.pairs)
    assert pairs >= 1
    opened = time.perf_counter()

    # Five students vote on their pages, twenty over HTTP; every page shows the same pairs.
    votes: dict[tuple[int, int], int] = {}
    for i, page in enumerate(students):
        page.wait_for_selector(f".class-rating[data-rating='{r.number}'] .rating-pair")
        shown = page.eval_on_selector_all(".class-rating .rating-pair .answer", TEXTS)
        assert len(shown) == 2 * pairs
        for p in range(pairs):
            card = page.locator(f".class-rating .rating-pair[data-pair='{p}']")
            card.locator(f"button[data-choice='{choice(i, p)}']").click()
            button = f".rating-pair[data-pair='{p}'] button[data-choice='{choice(i, p)}']"
            wait_for_page(page, f"document.querySelector(\"{button}\").ariaPressed === 'true'", 20)
            votes[(i, p)] = choice(i, p)
    for j, c in enumerate(http, start=BROWSER_STUDENTS):
        for p in range(pairs):
            assert c.post(f"/api/class/ratings/{r.number}/vote",
                          json={"pair": p, "choice": choice(j, p)}).status_code == 200
            votes[(j, p)] = choice(j, p)
    expected = [Counter(c for (_, p), c in votes.items() if p == q) for q in range(pairs)]
    # One student reads the open round in Arabic, right to left: axe and no sideways scroll at both widths.
    arabic, ar_start = students[-1], time.perf_counter()
    in_language(arabic, "ar", r.number)
    assert arabic.get_attribute("html", "dir") == "rtl"
    assert arabic.inner_text(".class-rating h3") == AR_TITLE
    assert arabic.eval_on_selector_all(".class-rating h4 bdi", TEXTS) == [p.prompt for p in r.pairs]
    assert arabic.locator(".class-rating button[data-choice]:not([disabled])").count() == 2 * pairs  # open
    for size, name in ((DESKTOP, "student-ar.png"), (PHONE, "student-ar-phone.png")):
        arabic.set_viewport_size(size)
        assert not sideways_scrollers(arabic, ".class-round")
        bad = panel_violations(arabic)
        assert not bad, describe(bad)
        arabic.locator(".class-round").screenshot(path=str(artifacts / f"class-rating-{name}"))
    arabic.set_viewport_size(DESKTOP)
    in_language(arabic, "en", r.number)
    ar_seconds = time.perf_counter() - ar_start
    # The class's styles come from each page's own <link>, once: on the panel and on the teacher's table.
    styled = ("([sel, prop]) => [document.querySelectorAll('link[href$=\"/class-rating.css\"]').length, "
              "getComputedStyle(document.querySelector(sel))[prop]]")
    assert students[0].evaluate(styled, [".class-rating .answer-card", "borderRadius"]) == [1, "6px"]
    assert teacher.evaluate(styled, [".rating-pairs td.agreement", "fontWeight"]) == [1, "600"]

    # The teacher's view: the counts submitted, pair by pair.
    total = BROWSER_STUDENTS + HTTP_STUDENTS
    voters = "document.querySelector('.rating-live .voters')?.dataset.voters"
    wait_for_page(teacher, f"{voters} === '{total}'", 30)
    cells = "rs => rs.map(r => [r.dataset.a, r.dataset.b, r.cells[3].textContent])"
    rows = teacher.eval_on_selector_all(".rating-pairs tbody tr", cells)
    assert [(int(a), int(b)) for a, b, _ in rows] == [(e[0], e[1]) for e in expected]
    assert rows[0][2].startswith(f"{max(expected[0].values())} of {total} chose")
    teacher.screenshot(path=str(artifacts / "class-rating-teacher.png"), full_page=True)

    # One run on the pooled pairs: each pair the way most students voted.
    teacher.click("#rating-train")
    wait_until(lambda: r.trained is not None, 30, "the class's run starts")
    pooled = [(p["prompt"], p["chosen"], p["rejected"]) for p in r.trained]
    majority = []
    for q, pair in enumerate(r.pairs):
        a, b = expected[q][0], expected[q][1]
        if a != b:
            majority.append((pair.prompt, *((pair.a, pair.b) if a > b else (pair.b, pair.a))))
    assert pooled == majority
    job = live.app.state.training_jobs.get(r.job)
    wait_until(lambda: job.ended is not None, 240, "the class's run and its safety table")
    names = [name for name, _ in job.events]
    assert job.status == "finished" and names[-1] == "done" and "safety" in names, (job.status, job.error)
    start = next(d for n, d in job.events if n == "start")
    before = next(d for n, d in job.events if n == "before")["probes"]
    after = next(d for n, d in job.events if n == "after")["probes"]
    assert start["data"]["train"] == len(pooled)  # trained on exactly the pooled pairs ...
    assert [(p["prompt"], p["answer"]) for p in before if p["rated"]] == [(p, c) for p, c, _ in pooled]
    trained = time.perf_counter()

    # Every page shows the same before and after, and the run's safety table, as text.
    texts = []
    for page in students:
        page.wait_for_selector(".class-run-result[data-done='1'] table.safety", timeout=60_000)
        greedy = page.eval_on_selector_all(".class-run-result .probe .answer", TEXTS)
        assert greedy[0::2] == [p["greedy"].strip() or "(nothing)" for p in before]
        assert greedy[1::2] == [p["greedy"].strip() or "(nothing)" for p in after]
        assert page.locator(".class-run-result table.safety tbody tr").count() == 2
        assert page.locator(".class-run-result b, .class-run-result script").count() == 0
        texts.append(page.locator(".class-run-result").inner_text())
        # ... and the class's counts, now the votes are in.
        shown = page.eval_on_selector_all(".class-rating .agreement",
                                          "ps => ps.map(p => [p.dataset.a, p.dataset.b])")
        assert [(int(a), int(b)) for a, b in shown] == [(e[0], e[1]) for e in expected]
    assert len(set(texts)) == 1
    teacher.wait_for_selector(".rating-result .class-run-result[data-done='1']")
    assert teacher.locator(".rating-result .class-run-result").inner_text() == texts[0]
    print(f"open {opened - t0:.1f} s, votes and run {trained - opened:.1f} s, "
          f"pages {time.perf_counter() - trained:.1f} s, the Arabic page's checks {ar_seconds:.1f} s")

    teacher.screenshot(path=str(artifacts / "class-rating-teacher-run.png"), full_page=True)
    teacher.reload()  # a teacher who reloads finds the latest rating round, followed again, and its run
    teacher.wait_for_selector(f".rating-live[data-rating='{r.number}'] table.rating-pairs")
    teacher.wait_for_selector(".rating-result .class-run-result[data-done='1']")
    bad, _ = serious(teacher)  # axe on the teacher's page, the run's results on it
    assert not bad, describe(bad)
    student = students[0]
    panel_bad = panel_violations(student)
    assert not panel_bad, describe(panel_bad)
    student.locator(".class-round").screenshot(path=str(artifacts / "class-rating-student.png"))
    teacher.set_viewport_size(PHONE)
    assert not sideways_scrollers(teacher, "#teacher")
    teacher.screenshot(path=str(artifacts / "class-rating-teacher-phone.png"), full_page=True)
    student.set_viewport_size(PHONE)
    assert not sideways_scrollers(student, ".class-round")
    student.screenshot(path=str(artifacts / "class-rating-student-phone.png"))
    for c in http:
        c.close()
