"""Rich renderings of the control plane's API models (status, routes, leaderboard, tracks).

``table`` keeps to the terminal's width (the columns a person reads first; long text is cut with an
ellipsis), ``wide`` shows every column at full length. Numbers have one format everywhere: scores
with 2 decimals, the infraction penalty and infraction rates with 3. States come with the words and
colours of :mod:`lbcloud.domain.state_words`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from lbcloud.domain.state_words import TONE_STYLE, Tone, format_number
from lbcloud.entrypoints.web.leaderboard import Leaderboard
from lbcloud.entrypoints.web.route_detail import RouteDetailOut
from lbcloud.entrypoints.web.views import ProgressOut, StateOut, SubmissionOut, TrackOut

DASH = "–"


def state_text(state: StateOut | None, fallback: str = "") -> Text:
    if state is None:
        return Text(fallback.replace("_", " "))
    return Text(state.word, style=TONE_STYLE.get(Tone(state.tone), ""))


def _bar(state: StateOut | None) -> RenderableType:
    if state is None or state.percent is None:
        return Text(state.detail if state else "", style="dim")
    return Group(ProgressBar(total=100, completed=state.percent, width=16), Text(state.detail, style="dim"))


def _when(value: object) -> str:
    text = str(value)
    return text[:16].replace("T", " ") if text else DASH


def submissions_table(subs: Sequence[SubmissionOut], *, wide: bool = False, title: str = "Submissions") -> Table:
    """One row per submission: its state word and progress (the same words as the web pages)."""
    table = Table(title=title, expand=False, title_justify="left", caption_justify="left")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("team", overflow="ellipsis", max_width=None if wide else 18)
    table.add_column("track", overflow="ellipsis", no_wrap=not wide)
    table.add_column("status", no_wrap=True)
    table.add_column("progress", overflow="fold", min_width=16)
    table.add_column("submitted", no_wrap=True)
    if wide:
        table.add_column("agent", overflow="fold")
        table.add_column("method")
    for s in subs:
        row: list[RenderableType] = [
            str(s.id),
            s.team,
            s.track,
            state_text(s.state, s.status),
            _bar(s.state),
            _when(s.created_at),
        ]
        if wide:
            row += [s.agent_ref, s.method_name or DASH]
        table.add_row(*row)
    return table


def progress_view(p: ProgressOut, *, wide: bool = False, url: str | None = None) -> Group:
    """A submission: its state, scores so far, and one row per route."""
    s = p.submission
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("submission", f"{s.id} ({s.team} on {s.track})")
    head.add_row("status", Group(state_text(p.state), Text(p.state.detail)))
    so_far = "" if p.final else " (so far)"
    head.add_row(
        f"scores{so_far}",
        f"driving score {format_number(p.driving_score)} · route completion {format_number(p.route_completion)} · "
        f"infraction penalty {format_number(p.infraction_penalty, 3)}",
    )
    if p.queue_position is not None:
        head.add_row("queue position", str(p.queue_position))
    if p.eta_s is not None and not s.terminal:
        head.add_row("estimated time left", f"{p.eta_s / 60:.0f} min")
    if url:
        head.add_row("page", url)
    routes = Table(title="Routes", expand=False, title_justify="left", caption_justify="left")
    routes.add_column("route", no_wrap=True)
    routes.add_column("status", no_wrap=True)
    routes.add_column("result", overflow="ellipsis", max_width=None if wide else 34)
    for name in ("DS", "RC", "IP", "infr.", "tries"):
        routes.add_column(name, justify="right", no_wrap=True)
    if wide:
        routes.add_column("blame")
        routes.add_column("sim time", justify="right")
        routes.add_column("wall", justify="right")
        routes.add_column("speed", justify="right")
    for r in sorted(p.routes, key=lambda r: r.position):
        name = r.route_id + (f" rep{r.repetition}" if r.repetition else "") + (" (smoke)" if r.smoke else "")
        row: list[RenderableType] = [
            name,
            state_text(r.state),
            r.state.detail,
            format_number(r.driving_score),
            format_number(r.route_completion),
            format_number(r.infraction_penalty, 3),
            DASH if r.infractions is None else str(r.infractions),
            str(r.attempts),
        ]
        if wide:
            row += [
                DASH if r.blame == "none" else r.blame,
                DASH if r.duration_game_s is None else f"{r.duration_game_s:.1f} s",
                DASH if r.wall_s is None else f"{r.wall_s:.1f} s",
                DASH if r.sim_ratio is None else f"{r.sim_ratio:.2f}×",
            ]
        routes.add_row(*row)
    return Group(head, routes)


def route_view(d: RouteDetailOut, *, wide: bool = False) -> Group:
    """One route: state, scores, each infraction, the attempts and the last error."""
    r = d.route
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("route", f"{r.instance_id} of submission {d.submission_id} ({d.team} on {d.track})")
    head.add_row("status", Group(state_text(r.state), Text(r.state.detail)))
    if r.blame != "none":
        head.add_row("blame", f"{r.blame}: {r.reason or ''}")
    head.add_row(
        "scores",
        f"driving score {format_number(r.driving_score)} · route completion {format_number(r.route_completion)} · "
        f"infraction penalty {format_number(r.infraction_penalty, 3)}",
    )
    parts: list[RenderableType] = [head]
    infractions = Table(title="Infractions", expand=False, title_justify="left", caption_justify="left")
    columns = (("#", "right"), ("infraction", "left"), ("sim time", "right"), ("position (x, y, z)", "left"))
    for name, justify in (*columns, ("factor", "right")):
        infractions.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    if wide:
        infractions.add_column("as recorded", overflow="fold")
    for index, i in enumerate(d.infractions, start=1):
        where = DASH if i.x is None else f"{i.x:.1f}, {i.y or 0.0:.1f}, {i.z or 0.0:.1f}"
        when = DASH if i.time_s is None else f"{i.time_s:.1f} s"
        row = [str(index), i.name, when, where, f"×{i.factor:.3f}" if i.factor < 1 else DASH]
        if wide:
            row.append(i.message)
        infractions.add_row(*row)
    if d.infractions:
        parts.append(infractions)
    elif r.record_status:
        parts.append(Text("No infraction on this route."))
    attempts = Table(title="Attempts", expand=False, title_justify="left", caption_justify="left")
    for name in ("#", "id", "outcome", "reason", "duration"):
        attempts.add_column(name, overflow="fold" if name == "reason" else "ellipsis")
    for a in d.attempts:
        duration = DASH if a.duration_s is None else f"{a.duration_s:.1f} s"
        attempts.add_row(str(a.number), str(a.id), state_text(a.state), a.reason or "", duration)
    parts.append(attempts)
    if d.last_error:
        parts.append(Text(f"last error: {d.last_error}", style="red"))
    if d.traceback:
        parts.append(Text(d.traceback, style="dim"))
    for artifact in d.artifacts:
        parts.append(Text(f"file: {artifact.name} ({artifact.size} bytes) {artifact.url}"))
    return Group(*parts)


def leaderboard_table(board: Leaderboard, *, wide: bool = False) -> Table:
    """One row per team. ``table`` shows the three scores; ``wide`` adds every infraction rate."""
    table = Table(title=f"Leaderboard — {board.track}", expand=False, title_justify="left", caption_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("team", overflow="ellipsis", max_width=None if wide else 20)
    table.add_column("method", overflow="ellipsis", max_width=None if wide else 18)
    shown = board.columns if wide else board.columns[:3]
    for column in shown:
        table.add_column(
            column.short if wide else column.short.replace("Route compl.", "RC"), justify="right", no_wrap=True
        )
    table.add_column("id", justify="right", no_wrap=True)
    if wide:
        table.add_column("affiliation")
        table.add_column("sensors")
        table.add_column("date", no_wrap=True)
    for e in board.entries:
        values = [format_number(v, 2 if i < 2 else 3) for i, v in enumerate(e.values[: len(shown)])]
        values += [DASH] * (len(shown) - len(values))
        row = [str(e.rank), e.team, e.method or DASH, *values, str(e.submission_id)]
        if wide:
            row += [e.affiliation or DASH, e.sensors, _when(e.date)]
        table.add_row(*row)
    if board.running:
        names = ", ".join(f"{r.team} ({r.detail})" for r in board.running)
        table.caption = f"running now: {names}"
    elif not board.entries:
        table.caption = "no finished submission yet"
    return table


def tracks_table(tracks: Sequence[TrackOut], *, wide: bool = False) -> Table:
    table = Table(title="Tracks", expand=False, title_justify="left", caption_justify="left")
    for name in ("track", "scorer", "simulator", "repetitions", "pool", "slots"):
        table.add_column(name, justify="right" if name in ("repetitions", "slots") else "left", no_wrap=True)
    table.add_column(
        "description", overflow="fold" if wide else "ellipsis", no_wrap=not wide, max_width=None if wide else 40
    )
    for t in tracks:
        table.add_row(t.name, t.scorer, t.simulator, str(t.repetitions), t.pool, str(t.slots), t.description or DASH)
    return table


def failures_table(progresses: Sequence[ProgressOut]) -> Table | None:
    """Submissions that failed, and routes that failed for a fault, with who is to blame."""
    table = Table(title="Attributed failures", title_justify="left")
    for column in ("submission", "team", "where", "blame", "reason"):
        table.add_column(column, overflow="fold", no_wrap=column != "reason")
    rows = 0
    for p in progresses:
        sub = p.submission
        faults = [r for r in p.routes if r.blame != "none" and r.status in ("done", "failed_final")]
        if sub.status == "failed":
            table.add_row(
                str(sub.id), sub.team, "whole submission", faults[0].blame if faults else "", sub.reason or ""
            )
            rows += 1
            continue
        for r in faults:
            table.add_row(str(sub.id), sub.team, f"route {r.route_id}", r.blame, r.reason or "")
            rows += 1
    return table if rows else None
