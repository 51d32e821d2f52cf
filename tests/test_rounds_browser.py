"""One round with a whole class: 100 HTTP students and 3 browser students answer, the teacher's page counts.

A real server (uvicorn, in this process) on the stub model in classroom mode. The teacher opens /teacher
in a browser and starts the round there; three students answer on their own pages (one browser context
each, so three signed ids), a hundred more over HTTP, each with its own signed-in session. Then:
every answer is counted; the teacher's bars hold exactly the counts submitted, word by word; every draw
is drawn again from its seed; the teacher's "Show everyone this" opens on every student's page; a
nickname with markup shows as text; the CSV export has one row per answer; axe finds nothing serious on
the teacher's page or the student's panel at either width, and neither scrolls sideways at phone width;
the teacher's page in Spanish and Arabic (right to left) takes its words from the catalogs and holds too.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import httpx
import pytest
from classroom_pages import open_students, open_teacher
from conftest import make_app, wait_for_page, wait_until
from hostile_model import LiveServer
from phone_checks import PHONE, sideways_scrollers
from playwright.sync_api import Error as PlaywrightError
from test_accessibility_browser import TAGS, describe, serious

from prediction_machine.classroom.rounds import word_key
from prediction_machine.web.app import STATIC

pytestmark = pytest.mark.browser

CLASS, TEACHER = "rounds-browser-class-4821", "rounds-browser-teacher-9315"
HTTP_STUDENTS, BROWSER_STUDENTS = 100, 3
NICKNAME = "<b>Ada</b>"


def sign_in(url: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=30, follow_redirects=True)
    assert c.get("/", params={"token": CLASS}).status_code == 200  # 303 to the page, the cookie kept
    return c


def answer_over_http(clients: list[httpx.Client], number: int, out: list, spread_s: float) -> None:
    """Every client answers once, their starts spread over `spread_s` seconds, several at a time."""
    def one(i: int, c: httpx.Client) -> None:
        time.sleep(spread_s * i / len(clients))
        t0 = time.perf_counter()
        r = c.post(f"/api/class/rounds/{number}/answer", json={"guess": f"word{i % 7}"})
        out.append((r.status_code, r.json(), time.perf_counter() - t0))

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def opened_the_link(page) -> bool:
    """Has the page reloaded (its marker gone) having opened push number 1? False while it navigates."""
    try:
        return page.evaluate("() => !window.beforeShown"
                             " && sessionStorage.getItem('prediction-machine:class-push') === '1'")
    except PlaywrightError:  # the page is between two documents
        return False


def serious_outside_roster(page) -> list[dict]:
    """axe's serious and critical findings on the teacher's page, less the roster's 103 rows (checked in
    English above): axe's time grows with the rows, and a translation changes none of their markup."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, context={"exclude": [["#teacher-students table"]]}, options={
        "runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]}).response["violations"]
    return [v for v in found if v.get("impact") in ("serious", "critical")]


@pytest.fixture(scope="module")
def live(stub, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path_factory.mktemp("runs")))
        app = make_app(model=stub, token=CLASS, teacher_token=TEACHER, allowed_hosts=("*",))
        with LiveServer(app) as server:
            yield server


def test_a_class_of_103_answers_one_round_and_the_teacher_sees_every_answer(live, browser, artifacts):
    url = live.url
    teacher = open_teacher(browser, url, TEACHER)
    students = open_students(browser, url, CLASS, BROWSER_STUDENTS)
    http = [sign_in(url) for _ in range(HTTP_STUDENTS)]

    teacher.fill("#round-prompt", "The cat sat on the")
    teacher.click("#round-start")
    teacher.wait_for_selector(".round-live h3")
    number = int(teacher.locator(".round-live").get_attribute("data-round"))

    results: list = []
    worker = threading.Thread(target=answer_over_http, args=(http, number, results, 5.0))
    worker.start()
    typed = {}
    for i, page in enumerate(students):
        page.wait_for_selector(".class-round .round-form:not([hidden])")
        typed[i] = f"Guess{i}"
        page.fill("#round-guess", typed[i])
        page.click("#round-draw")
        page.wait_for_selector(".class-round .round-token")
    worker.join(120)

    assert len(results) == HTTP_STUDENTS and all(status == 200 for status, _, _ in results), results[:3]
    answers = [body for _, body, _ in results]
    r = live.app.state.classroom.book.get(number)
    assert len(r.answers) == HTTP_STUDENTS + BROWSER_STUDENTS  # every answer counted
    for a in r.answers:  # every draw again from its seed
        assert r.draw(a.seed).id == a.token
    for body in answers[:5]:  # ... and through the page's own preview route, by anyone
        again = http[0].post("/api/sample/preview", json={"prompt": "The cat sat on the", "chat": False,
                                                          "temperature": 1.0, "seed": body["seed"], "k": 1})
        assert again.json()["draw"]["id"] == body["token"]["id"]
    latencies = sorted(s for _, _, s in results)
    print(f"HTTP answers: p50 {latencies[49] * 1000:.0f} ms, p95 {latencies[94] * 1000:.0f} ms")

    # The teacher's bars: exactly the counts submitted, word by word.
    total = HTTP_STUDENTS + BROWSER_STUDENTS
    wait_for_page(teacher, f"document.querySelector('.draw-count')?.dataset.draws === '{total}'", 30)
    drawn = Counter(word_key(a.text) for a in r.answers)
    guessed = Counter(word_key(a.guess) for a in r.answers)
    rows = teacher.eval_on_selector_all(".bars tbody tr[data-word]", """rows => rows.map(tr => [
        tr.dataset.word, tr.cells[1].textContent, tr.cells[2].textContent])""")
    assert rows
    for word, guesses, draws in rows:
        assert (int(guesses), int(draws)) == (guessed[word], drawn[word]), word
    assert teacher.locator(".bars script, .bars svg, .bars img, .bars b").count() == 0  # tokens as text
    teacher.screenshot(path=str(artifacts / "teacher-round.png"), full_page=True)
    students[0].locator(".class-round").screenshot(path=str(artifacts / "student-round.png"))

    # A nickname with markup is text on the teacher's screen.
    students[0].fill("#round-nickname", NICKNAME)
    students[0].click(".round-nickname button")
    wait_until(lambda: teacher.locator("td.nickname", has_text=NICKNAME).count() == 1, 20,
               "the nickname on the teacher's roster")
    assert teacher.locator("td.nickname b").count() == 0

    # The CSV export: one row per answer.
    with teacher.expect_download() as download:
        teacher.click("#export-rounds")
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert len([line for line in lines if line.startswith(f"{number},")]) == total

    # "Show everyone this": every student's page opens the link.
    for page in students:
        page.evaluate("() => { window.beforeShown = true; }")  # gone once the page opens the link
    teacher.fill("#show-link", f"{url}/#attention?layer=1&head=0")
    teacher.click("#show-button")
    for page in students:
        # (the URL itself is not checked: a section that records its own state may rewrite the fragment)
        wait_for_page(page, opened_the_link, 20)

    # Accessibility and phone width: the teacher's page, and a student's panel.
    bad, _ = serious(teacher)
    assert not bad, describe(bad)
    teacher.set_viewport_size(PHONE)
    assert not sideways_scrollers(teacher, "#teacher")
    teacher.screenshot(path=str(artifacts / "teacher-round-phone.png"), full_page=True)
    student = students[1]
    student.set_viewport_size(PHONE)
    student.wait_for_selector(".class-round summary")
    student.click(".class-round summary")  # after an answer the panel opens folded
    student.wait_for_selector(".class-round .round-token")
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(student, context=".class-round", options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}).response["violations"]
    panel_bad = [v for v in found if v.get("impact") in ("serious", "critical")]
    assert not panel_bad, describe(panel_bad)
    student.screenshot(path=str(artifacts / "student-round-phone.png"))
    # (the teacher's page at phone width: in Arabic, below)
    student.set_viewport_size({"width": 1280, "height": 900})  # and the open round at desktop width
    found = Axe().run(student, context=".class-round", options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}).response["violations"]
    panel_bad = [v for v in found if v.get("impact") in ("serious", "critical")]
    assert not panel_bad, describe(panel_bad)

    # The lesson "a model is a distribution", step 3: stop the round, start the next one colder.
    teacher.click("#round-stop")
    teacher.fill("#round-temperature", "0.3")
    teacher.click("#round-start")
    wait_for_page(teacher, f"document.querySelector('.round-live')?.dataset.round === '{number + 1}'", 20)
    assert "0.3" in teacher.inner_text(".round-live")

    # The teacher's page in Spanish and Arabic: the title and no English left where the catalog has the
    # words, Arabic laid out right to left, nothing sideways at phone width; axe at both widths in Arabic
    # (Spanish lays out as English does).
    def catalog(language: str) -> dict:
        return json.loads((STATIC / "content" / language / "teacher.json").read_text(encoding="utf-8"))

    def texts(words: dict) -> set[str]:
        return {t for v in words.values() for t in (v.values() if isinstance(v, dict) else [v])}

    english = texts(catalog("en"))
    for language, direction in (("es", "ltr"), ("ar", "rtl")):
        words = catalog(language)
        teacher.set_viewport_size({"width": 1280, "height": 900})
        teacher.evaluate(f"() => localStorage.setItem('prediction-machine:language', '{language}')")
        teacher.reload()
        teacher.wait_for_selector("#teacher[data-ready='teacher'] .round-live h3")
        assert teacher.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == [
            language, direction]
        shown = teacher.eval_on_selector_all("#teacher :is(h1, h2, h3, label, button, th)",
                                             "hs => hs.map((h) => h.textContent)")
        assert teacher.inner_text("#teacher h1") == words["page_title"] == teacher.title()
        assert not [h for h in shown if h in english and h not in texts(words)], shown
        if language == "ar":
            bad = serious_outside_roster(teacher)
            assert not bad, (language, describe(bad))
            teacher.screenshot(path=str(artifacts / "teacher-round-ar.png"))
        teacher.set_viewport_size(PHONE)
        assert not sideways_scrollers(teacher, "#teacher"), language
        assert teacher.evaluate("() => document.documentElement.scrollWidth <= innerWidth"), language
        if language == "ar":
            bad = serious_outside_roster(teacher)
            assert not bad, (language, describe(bad))
        teacher.screenshot(path=str(artifacts / f"teacher-round-phone-{language}.png"))
    (artifacts / "rounds-latency.json").write_text(json.dumps({"p95_s": latencies[94]}))
    for c in http:
        c.close()
