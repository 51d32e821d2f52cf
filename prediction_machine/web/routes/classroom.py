"""The class together: rounds against the model, the students' own reports, and the teacher's view.

Only in classroom mode (serve with a token): without one, every route here answers 404 and the
single learner's page is as it was. Students are known by the signed client id the security
middleware established (a forged one never gets this far: 401). The teacher is the request the
middleware marked as the teacher; every teacher route answers 403 to a student.

A student sees only the open round and their own answers; the teacher sees the class's tallies,
the roster (by public names that cannot be turned back into client ids) and the CSV export.
Everything is kept in memory, bounded by ServerSettings, and written out only as the export.
Each route validates, calls one function of prediction_machine/classroom and serializes.
"""

from __future__ import annotations

import time
from importlib.resources import files
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import AfterValidator, Field
from starlette.exceptions import HTTPException

from prediction_machine.classroom import class_rating, export, rounds
from prediction_machine.classroom.roster import Progress, Roster
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.jsonsafe import json_number as num
from prediction_machine.web import identity
from prediction_machine.web.deps import language_model, settings
from prediction_machine.web.routes import curriculum as cur
from prediction_machine.web.routes.inference import prompt_ids
from prediction_machine.web.validation import Strict, Temperature, no_surrogates, up_to, within_limits

router = APIRouter(prefix="/api/class", tags=["classroom"])
page_router = APIRouter()  # GET /teacher: the teacher's page itself
SECTION = r"^[a-z][a-z0-9_-]{0,31}$"  # a page section's id, as the page's HTML names it ("makes_up")
MAX_QUESTIONS = 100  # questions one section may count
Number = Annotated[int, Field(ge=1, le=10**9)]  # a round's (or a rating round's) number, in the path
TEACHER_PAGE = files("prediction_machine") / "web" / "static" / "teacher.html"


def plain_text(limit: str):
    return Annotated[str, Field(json_schema_extra=up_to(limit)), AfterValidator(no_surrogates)]


class RoundRequest(Strict):
    prompt: Annotated[str, Field(min_length=1, json_schema_extra=up_to("max_prompt_chars"),
                                 description="the text the class continues"), AfterValidator(no_surrogates)]
    temperature: Temperature = 1.0
    top_p: float = Field(1.0, gt=0, le=1, strict=True, description="keep the smallest set reaching p")
    chat: bool = Field(False, description="wrap the prompt in the chat template (default: plain text)")


class AnswerRequest(Strict):
    guess: Annotated[str, Field(min_length=1, json_schema_extra=up_to("round_guess_chars"),
                                description="the word the student thinks comes next"),
                     AfterValidator(no_surrogates)]


class NicknameRequest(Strict):
    nickname: Annotated[str, Field(json_schema_extra=up_to("nickname_chars"),
                                   description="shown as text on the teacher's screen; empty clears it"),
                        AfterValidator(no_surrogates)]


class ProgressRequest(Strict):
    section: str = Field(..., pattern=SECTION, description="the page section's id, e.g. 'attention'")
    tour_done: bool = False
    questions_right: int = Field(0, ge=0, le=MAX_QUESTIONS, strict=True)
    questions_total: int = Field(0, ge=0, le=MAX_QUESTIONS, strict=True)


# A link on this server: '/...', never '//host' or '/\\host' (which a browser reads as another server)
LOCAL_LINK = r"^/([^/\\\x00-\x1f\x7f][^\\\x00-\x1f\x7f]*)?$"


class ShowRequest(Strict):
    link: Annotated[str, Field(min_length=1, pattern=LOCAL_LINK, json_schema_extra=up_to("class_link_chars"),
                               description="a link on this server: '/#attention?layer=3'"),
                    AfterValidator(no_surrogates)]


# ----------------------------------------------------------------------------- who is asking


class ClassState:
    """One class: its rounds and its roster, made on the first classroom request."""

    def __init__(self, s):
        self.book = rounds.RoundBook(s.rounds_per_hour, s.rounds_kept)
        self.roster = Roster(identity.identity_key(), s.class_students_kept)
        self.ratings = class_rating.RatingBook()  # the class rating round (routes/class_rating.py)


def class_state(request: Request) -> ClassState:
    """The class of this server; 404 when it runs without a token (one learner: no class)."""
    s = settings(request)
    if not s.token:
        raise HTTPException(404, "there is no class: this server runs without a token (serve --token)")
    state = request.app.state
    if getattr(state, "classroom", None) is None:
        state.classroom = ClassState(s)
    return state.classroom


def student(request: Request) -> str:
    """The asking student's signed client id (the middleware refused anyone without one).

    Every class request a student signs marks them present on the roster, whatever it asks and
    whether or not it is refused: a student who only votes over HTTP, or whose page stopped polling
    but who still reads the class run, is as much here as one whose page polls /now.
    """
    client = request.scope.get("pm_client")
    if client is None:
        raise HTTPException(401, "no signed client id: open the class link your teacher gave you")
    if not is_teacher(request):
        class_state(request).roster.seen(client)
    return client


def teacher_only(request: Request) -> ClassState:
    c = class_state(request)
    if not request.scope.get("pm_teacher", False):
        raise HTTPException(403, "only the teacher may do this (open the page with the teacher's token)")
    return c


def is_teacher(request: Request) -> bool:
    return bool(request.scope.get("pm_teacher", False))


def find_round(c: ClassState, number: int) -> rounds.Round:
    r = c.book.get(number)
    if r is None:
        raise HTTPException(404, f"number: there is no round {number} (or it is too old to be kept)")
    return r


# ----------------------------------------------------------------------------- what answers look like


def answer_json(r: rounds.Round, a: rounds.Answer) -> dict:
    return {"round": r.number, "guess": a.guess, "seed": a.seed, "token": {"id": a.token, "text": a.text},
            "prob": num(a.prob, 8)}


def round_json(r: rounds.Round) -> dict:
    return {"number": r.number, "prompt": r.prompt, "temperature": r.params.temperature,
            "top_p": r.params.top_p, "open": r.open, "started_s_ago": num(time.time() - r.started, 1)}


def tally_json(t: dict) -> dict:
    rows = [{**row, "prob": num(row["prob"], 6)} for row in t["rows"]]
    return {**t, "rows": rows, "prob_other": num(t["prob_other"], 6),
            **{k: (None if t[k] is None else num(t[k], 6)) for k in ("tv", "expected_tv", "tv_bound")}}


def rating_run(request: Request, r: class_rating.RatingRound) -> dict | None:
    """A rating round's one run as the whole class may see it; None before the teacher starts it."""
    if r.job is None:
        return None
    try:
        job = cur.manager(request).get(r.job)  # the teacher's job, read here for every student
    except HTTPException:
        return {"job": r.job, "folder": r.folder, "status": "forgotten", "step": None, "steps": None}
    last = job.describe()["last_step"]
    return {"job": r.job, "folder": r.folder, "status": job.status, "step": last.get("step"),
            "steps": last.get("steps")}


def rating_json(request: Request, r: class_rating.RatingRound, me: str | None) -> dict:
    """A rating round for a student (me: their own choices; the class's counts once voting is over)
    or for the teacher (me=None: the counts at all times)."""
    out = {"number": r.number, "open": r.open, "temperature": r.temperature,
           "started_s_ago": num(time.time() - r.started, 1), "voters": r.voters(),
           "pairs": [{"pair": n, "prompt": p.prompt, "answers": [p.a, p.b], "cut": list(p.cut),
                      "seed": p.seed}
                     for n, p in enumerate(r.pairs)],
           "run": rating_run(request, r)}
    if me is not None:
        out["mine"] = {str(p): c for p, c in r.of(me).items()}
    counts = [{"pair": n, "a": a, "b": b, "votes": a + b, "choice": None if a == b else int(b > a)}
              for n, (a, b) in enumerate(r.counts())]
    out["counts"] = counts if (me is None or not r.open) else None
    return out


# ----------------------------------------------------------------------------- every student's page


@router.get("/now", summary="The open round, this student's answers in it, the class rating round and the "
                             "latest shared link")
def now(request: Request) -> dict:
    c = class_state(request)
    me = student(request)
    you = None if is_teacher(request) else c.roster.seen(me)  # the roster entry student() just marked
    current = c.book.current()
    out = {"teacher": is_teacher(request), "you": None, "round": None, "push": None, "rating": None}
    if you is not None:
        out["you"] = {"student": you.public, "nickname": you.nickname}
    if current is not None:
        mine = current.of(me)
        out["round"] = {**round_json(current), "mine": [answer_json(current, a) for a in mine],
                        "answers_left": max(current.answers_per_student - len(mine), 0)}
    if (rated := c.ratings.latest) is not None:
        out["rating"] = rating_json(request, rated, None if is_teacher(request) else me)
    if c.roster.push is not None:
        p = c.roster.push
        out["push"] = {"number": p.number, "link": p.link}
    return out


@router.post("/rounds/{number}/answer", summary="A student's guess, and their one draw from the model",
             responses={409: {"description": "the round is over"}})
def answer(number: Number, req: AnswerRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    c = class_state(request)
    me = student(request)
    r = find_round(c, number)
    try:
        a = r.answer(me, req.guess.strip())
    except rounds.RoundError as e:
        raise HTTPException(409 if e.kind == "closed" else 429, str(e)) from e
    return answer_json(r, a)


@router.post("/nickname", summary="This student's optional nickname (plain text) for the teacher's screen")
def nickname(req: NicknameRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    c = class_state(request)
    if is_teacher(request):
        raise HTTPException(403, "the teacher has no nickname on the roster")
    c.roster.name(student(request), req.nickname.strip())
    return {"nickname": req.nickname.strip()}


@router.post("/progress", summary="This student's progress in one section: tour finished, questions right")
def progress(req: ProgressRequest, request: Request) -> dict:
    c = class_state(request)
    if req.questions_right > req.questions_total:
        raise HTTPException(422, f"questions_right: {req.questions_right} is more than questions_total "
                                 f"({req.questions_total})")
    if is_teacher(request):
        raise HTTPException(403, "the teacher's own progress is not counted")
    c.roster.record(student(request), req.section,
                    Progress(req.tour_done, req.questions_right, req.questions_total))
    return {"section": req.section, "recorded": True}


# ----------------------------------------------------------------------------- the teacher's view


@router.post("/rounds", summary="Teacher: start a round (the open one closes) with a prompt and settings")
def start_round(req: RoundRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    c = teacher_only(request)
    s = settings(request)
    lm = language_model(request)
    ids = prompt_ids(request, lm, req.prompt, req.chat)
    params = SamplingParams(temperature=req.temperature, top_p=req.top_p)

    def make(number: int) -> rounds.Round:
        text = lambda i: lm.tokenizer.token(i).text  # noqa: E731 - the words of a token id
        return rounds.from_model(number, req.prompt, lm.model, ids, params, text,
                                 answers_per_student=s.round_answers_per_student, cap=s.round_answers_kept)

    try:
        r = c.book.start(make)
    except rounds.RoundError as e:
        raise HTTPException(429, str(e)) from e
    return round_json(r)


@router.get("/rounds/{number}", summary="Teacher: a round's three bars (guesses, draws, model) and distance")
def round_tally(number: Number, request: Request) -> dict:
    c = teacher_only(request)
    r = find_round(c, number)
    return {**round_json(r), "tally": tally_json(r.tally())}


@router.post("/rounds/{number}/stop", summary="Teacher: close a round; its answers stay for the export")
def stop_round(number: Number, request: Request) -> dict:
    c = teacher_only(request)
    r = find_round(c, number)
    r.stop()
    return round_json(r)


@router.get("/students", summary="Teacher: the students present, their nicknames and their progress")
def students(request: Request) -> dict:
    c = teacher_only(request)
    present = {id(s) for s in c.roster.present()}
    now_s = time.time()
    listed = [{"student": s.public, "nickname": s.nickname, "present": id(s) in present,
               "seen_s_ago": num(now_s - s.last_seen, 1),
               "progress": {k: vars(p) for k, p in s.progress.items()}} for s in c.roster.everyone()]
    return {"present": len(present), "students": listed}


@router.post("/show", summary="Teacher: show everyone this link; every student's page opens it")
def show(req: ShowRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    c = teacher_only(request)
    if not req.link.startswith("/") or req.link.startswith("//") or "\\" in req.link:
        raise HTTPException(422, "link: must be a link on this server, starting with a single '/'")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in req.link):
        raise HTTPException(422, "link: must not hold control characters")
    p = c.roster.show(req.link)
    return {"number": p.number, "link": p.link}


CSV_DOC = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "a CSV file"}}


@router.get("/export", response_class=Response, responses=CSV_DOC,
            summary="Teacher: the class's progress, the rounds' answers or the rating round's counts, as CSV")
def export_csv(request: Request, what: Literal["progress", "rounds", "ratings"] = "progress") -> Response:
    c = teacher_only(request)
    if what == "progress":
        text = export.progress_csv(c.roster)
    elif what == "rounds":
        text = export.rounds_csv(c.book.all(), c.roster)
    else:
        text = export.ratings_csv(c.ratings.latest)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="class-{what}.csv"',
                             "Cache-Control": "no-store"})


@page_router.get("/teacher", include_in_schema=False)
def teacher_page(request: Request) -> FileResponse:
    teacher_only(request)
    return FileResponse(str(TEACHER_PAGE), headers={"Cache-Control": "no-store"})
