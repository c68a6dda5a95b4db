"""The web pages as HTML strings, from the same dicts the JSON API returns.

Everything dynamic is escaped; no inline script or style (the Content-Security-Policy forbids
them): behaviour comes from /static/board.js and looks from /static/app.css, both shipped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from services.gateway import formats
from services.gateway.charts import Series, bar_chart, line_chart

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
ASSET_VERSION = "1"


def e(value: Any) -> str:
    return escape(str(value), quote=True)


def layout(title: str, body: str, active: str = "") -> str:
    current = ' class="active" aria-current="page"'
    nav = "".join(
        f'<a href="{href}"{current if active == key else ""}>{label}</a>'
        for key, href, label in (
            ("rounds", "/", "Leaderboard"),
            ("reputation", "/reputation", "Reputation"),
            ("api", "/api/v1/rounds", "API"),
        )
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · crowdquant</title>"
        f'<link rel="stylesheet" href="/static/app.css?v={ASSET_VERSION}">'
        f'<script src="/static/board.js?v={ASSET_VERSION}" defer></script></head><body>'
        '<header class="top"><a class="brand" href="/"><span class="logo" aria-hidden="true">◆</span>crowdquant'
        f'</a><nav aria-label="Main">{nav}</nav></header><main>{body}</main>'
        "<footer>Scores are means over eras; intervals are 95% bootstrap intervals over eras. "
        "Open rounds show Ladder-protected validation scores. Amounts in satoshis (sat) or BTC.</footer>"
        "</body></html>"
    )


def message_page(title: str, text: str, link: str = "/", link_text: str = "Back to the leaderboard") -> str:
    return layout(
        title,
        f'<section class="notice"><h1>{e(title)}</h1><p>{e(text)}</p>'
        f'<p><a class="button" href="{e(link)}">{e(link_text)}</a></p></section>',
    )


def card(label: str, value: str, note: str = "") -> str:
    extra = f'<span class="note">{e(note)}</span>' if note else ""
    return f'<div class="card"><span class="label">{e(label)}</span><span class="value">{e(value)}</span>{extra}</div>'


def _select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: str) -> str:
    opts = "".join(f'<option value="{e(v)}"{" selected" if v == chosen else ""}>{e(t)}</option>' for v, t in options)
    return f'<label>{e(label)}<select name="{e(name)}" data-autosubmit>{opts}</select></label>'


def _round_name(r: dict[str, Any]) -> str:
    return f"Round {r['round_number']}" + (" · open" if r["source"] == "validation" else "")


def _th(label: str, kind: str, css: str = "", title: str = "", first: str = "", sort: str = "none") -> str:
    """A sortable header; ``first`` is the direction of the first click ("asc" for ranks and losses)."""
    klass = f' class="{css}"' if css else ""
    tip = f' title="{e(title)}"' if title else ""
    start = f' data-first="{first}"' if first else ""
    text = e(label).replace(" (sat)", ' <span class="unit">(sat)</span>')
    return (
        f'<th{klass} data-kind="{kind}"{start} aria-sort="{sort}"{tip}><button type="button">{text}'
        '<span class="arrow" aria-hidden="true"></span></button></th>'
    )


def _num(value: float | int | None, text: str, css: str = "num") -> str:
    data = "" if value is None else f' data-v="{value!r}"'
    return f'<td class="{css}"{data}>{text}</td>'


def board_page(board: dict[str, Any], rounds: list[dict[str, Any]], tournament: str) -> str:
    info = board["round"]
    number = info["round_number"]
    live = board["source"] == "live"
    metric = board["metric"]
    metrics = [metric] + [m for m in info["metrics"] if m != metric]
    round_options = [(str(r["round_number"]), _round_name(r)) for r in rounds] or [(str(number), _round_name(info))]
    controls = (
        '<form class="controls" method="get" action="/">'
        + (f'<input type="hidden" name="tournament" value="{e(tournament)}">' if tournament else "")
        + _select("round", "Round", round_options, str(number))
        + _select("metric", "Rank by", [(m, formats.metric_label(m)) for m in info["metrics"]], metric)
        + '<noscript><button type="submit">Show</button></noscript></form>'
    )
    badge = (
        '<span class="badge live">Live scores</span>'
        if live
        else '<span class="badge open">Open round · validation</span>'
    )
    when = (
        f"published {formats.when(info['publish_time'])}"
        if live
        else "scores update as uploads arrive (Ladder-protected)"
    )
    head = (
        f'<section class="board-head"><div><h1>Round {number} {badge}</h1>'
        f'<p class="sub">Tournament {e(info["tournament_id"])} · {e(when)} · ranked by '
        f"{e(formats.metric_label(metric))}</p></div>{controls}</section>"
    )
    meta = info["meta_model"].get(info["main_metric"] or "", {}).get("value")
    cards = [card("Models", f"{board['total_size']:,}")]
    if live:
        cards.append(card(f"Meta model {formats.metric_label(info['main_metric'])}", formats.score(meta)))
        cards.append(
            card(
                "Total payout",
                formats.signed_sats(info["total_payout_satoshis"]) if info["payouts_known"] else "pending",
                "" if info["payouts_known"] else "not paid yet",
            )
        )
        ties = sum(1 for x in board["entries"] if x["tied_with_next"])
        cards.append(card("Tied neighbours", str(ties), "overlapping intervals"))
    heads = [
        _th("#", "num", "rank", first="asc", sort="ascending"),
        _th("Model", "text"),
        _th("Participant", "text", "opt"),
    ]
    heads += [
        _th(
            formats.metric_label(m),
            "num",
            "metric key" if m == metric else "metric opt",
            "lower is better" if m == "logloss" else "higher is better",
            "asc" if m == "logloss" else "",
        )
        for m in metrics
    ]
    if live:
        heads += [_th("Stake (sat)", "num", "opt"), _th("Payout (sat)", "num")]
    rows = []
    for x in board["entries"]:
        tie = (
            '<span class="tie" title="Statistically tied with the model above: their intervals overlap">≈</span>'
            if x["tied_with_previous"]
            else ""
        )
        cells = [
            _num(x["rank"], f"{x['rank']}{tie}", "num rank"),
            f'<td><a href="/models/{e(x["model_id"])}">{e(x["model_display_name"])}</a></td>',
            f'<td class="opt muted">{e(x["participant_display_name"])}</td>',
        ]
        for m in metrics:
            s = x["metrics"].get(m, {})
            value = s.get("value")
            ci = (
                f'<span class="ci">{formats.score(s["ci_low"])} … {formats.score(s["ci_high"])}</span>'
                if live and s.get("ci_low") is not None
                else ""
            )
            cells.append(
                _num(value, f"{formats.score(value)}{ci}", "num metric key" if m == metric else "num metric opt")
            )
        if live:
            cells.append(_num(x["stake_satoshis"], formats.count(x["stake_satoshis"]), "num opt"))
            payout = x["payout_satoshis"]
            css = "num pos" if payout > 0 else "num neg" if payout < 0 else "num muted"
            why = x.get("zero_payout")
            note = (
                f'<span class="ci reason" title="{e(why["detail"])}">{e(formats.zero_payout(why["code"]))}</span>'
                if why and info["payouts_known"]
                else ""
            )
            cells.append(
                _num(payout, (formats.count(payout, signed=True) if info["payouts_known"] else "—") + note, css)
            )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(heads)}" class="empty">No scores yet in this round.</td></tr>')
    more = ""
    if board["next_page_token"]:
        query = urlencode(
            {
                "round": number,
                "metric": metric,
                "page_token": board["next_page_token"],
                **({"tournament": tournament} if tournament else {}),
            }
        )
        more = f'<p class="more"><a class="button" href="/?{e(query)}">Next models →</a></p>'
    api = urlencode({"round": number, "metric": metric, **({"tournament": tournament} if tournament else {})})
    hint = (
        "Click a column header to sort. ≈ marks a model statistically tied with the one above."
        if live
        else "Click a column header to sort. Validation scores are rounded by the Ladder."
    )
    table = (
        f'<p class="hint">{e(hint)} <a href="/api/v1/leaderboard?{e(api)}">JSON</a></p>'
        f'<div class="table-wrap"><table class="board sortable"><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{more}"
    )
    return layout(f"Round {number}", head + f'<section class="cards">{"".join(cards)}</section>' + table, "rounds")


def reputation_page(rep: dict[str, Any], metrics: list[str], tournament: str) -> str:
    metric = rep["metric"]
    weights = ", ".join(f"{w:.2f}" for w in rep["weights"])
    controls = (
        '<form class="controls" method="get" action="/reputation">'
        + (f'<input type="hidden" name="tournament" value="{e(tournament)}">' if tournament else "")
        + _select("metric", "Metric", [(m, formats.metric_label(m)) for m in metrics], metric)
        + _select("window", "Rounds", [(str(n), f"last {n}") for n in (1, 2, 4, 8, 12, 20)], str(rep["window_rounds"]))
        + '<noscript><button type="submit">Show</button></noscript></form>'
    )
    head = (
        f'<section class="board-head"><div><h1>Reputation <span class="badge live">rolling</span></h1>'
        f'<p class="sub">Weighted average of {e(formats.metric_label(metric))} over the last '
        f"{rep['window_rounds']} published rounds up to round {rep['last_round']['round_number']} · weights, "
        f"newest first: {e(weights)}</p></div>{controls}</section>"
    )
    heads = [
        _th("#", "num", "rank", first="asc", sort="ascending"),
        _th("Model", "text"),
        _th("Participant", "text", "opt"),
        _th(formats.metric_label(metric), "num", "metric key", first="asc" if metric == "logloss" else ""),
        _th("Rounds", "num"),
        _th("Stake (sat)", "num", "opt"),
    ]
    rows = [
        f"<tr>{_num(x['rank'], str(x['rank']), 'num rank')}"
        f'<td><a href="/models/{e(x["model_id"])}">{e(x["model_display_name"])}</a></td>'
        f'<td class="opt muted">{e(x["participant_display_name"])}</td>'
        f"{_num(x['reputation'], formats.score(x['reputation']), 'num metric key')}"
        f"{_num(x['rounds_counted'], str(x['rounds_counted']))}"
        f"{_num(x['stake_satoshis'], formats.count(x['stake_satoshis']), 'num opt')}</tr>"
        for x in rep["entries"]
    ]
    table = (
        '<p class="hint">A model is averaged over the rounds of the window it took part in. '
        "Click a column header to sort.</p>"
        f'<div class="table-wrap"><table class="board sortable"><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    return layout("Reputation", head + table, "reputation")


def model_page(profile: dict[str, Any]) -> str:
    rounds = profile["rounds"]
    labels = [f"R{r['round_number']}" for r in rounds]
    names = [m for m in ("corr", "mmc", "logloss", "auc") if any(m in r["metrics"] for r in rounds)]
    live = [r for r in rounds if r["source"] == "live"]
    score_names = [m for m in names if m in ("corr", "mmc")] or names[:2]

    def column(m: str, key: str) -> list[float | None]:
        return [r["metrics"].get(m, {}).get(key) for r in rounds]

    scores_svg = line_chart(
        "Scores by round",
        labels,
        [
            Series(formats.metric_label(m), column(m, "value"), column(m, "ci_low"), column(m, "ci_high"))
            for m in score_names
        ],
    )
    payouts_svg = bar_chart(
        "Payouts by round",
        [f"R{r['round_number']}" for r in live],
        [r["payout_satoshis"] for r in live],
        formats.compact,
        lambda v: formats.signed_sats(int(v)),
    )
    ranks = [r["rank"] for r in live if r["rank"]]
    cards = (
        card("Rounds", str(len(live)), "+ open round" if len(live) < len(rounds) else "")
        + card("Best rank", f"#{min(ranks)}" if ranks else "—")
        + card("Latest rank", f"#{ranks[-1]}" if ranks else "—")
        + card("Total payout", formats.signed_sats(profile["total_payout_satoshis"]))
    )
    heads = [_th("Round", "num", sort="descending"), _th("Rank", "num", "rank", first="asc")]
    heads += [
        _th(formats.metric_label(m), "num", "metric" if i == 0 else "metric opt", first="asc" if m == "logloss" else "")
        for i, m in enumerate(names)
    ]
    heads += [
        _th("Stake (sat)", "num", "opt"),
        _th("Payout (sat)", "num"),
        _th("Why no payout", "text", "opt", title="the allocation's reason when a round paid nothing"),
    ]
    rows = []
    for r in reversed(rounds):
        state = "" if r["source"] == "live" else ' <span class="badge open small">open</span>'
        cells = [
            _num(r["round_number"], f'<a href="/?round={r["round_number"]}">{r["round_number"]}</a>{state}'),
            _num(r["rank"], f"#{r['rank']}" if r["rank"] else "—", "num rank"),
        ]
        for i, m in enumerate(names):
            metric = r["metrics"].get(m, {})
            value = metric.get("value")
            text = formats.score(value)
            if m in ("corr", "mmc") and metric.get("ci_low") is not None and metric.get("ci_high") is not None:
                # the contribution's interval: by default a round is paid only when it lies above zero
                low, high = formats.score(metric["ci_low"]), formats.score(metric["ci_high"])
                text += f'<span class="ci">{low} … {high}</span>'
            cells.append(_num(value, text, "num metric" if i == 0 else "num metric opt"))
        cells.append(_num(r["stake_satoshis"], formats.count(r["stake_satoshis"]), "num opt"))
        payout = r["payout_satoshis"]
        cells.append(
            _num(
                payout,
                formats.count(payout, signed=True),
                "num pos" if payout > 0 else "num neg" if payout < 0 else "num muted",
            )
        )
        why = r.get("zero_payout")
        cells.append(
            f'<td class="opt reason" title="{e(why["detail"])}">{e(formats.zero_payout(why["code"]))}'
            f'<span class="ci">{e(why["detail"])}</span></td>'
            if why
            else '<td class="opt reason"></td>'
        )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    body = (
        f'<section class="board-head"><div><p class="crumb"><a href="/">Leaderboard</a> / model</p>'
        f'<h1>{e(profile["model_display_name"])}</h1><p class="sub">by {e(profile["participant_display_name"])}'
        f' · tournament {e(profile["tournament_id"])} · <a href="/api/v1/models/{e(profile["model_id"])}">JSON'
        f'</a></p></div></section><section class="cards">{cards}</section>'
        f'<section class="charts"><figure class="chart-card" id="scores-chart"><figcaption>Scores by round'
        f'</figcaption>{scores_svg}</figure><figure class="chart-card" id="payouts-chart"><figcaption>'
        f'Payouts by round <span class="muted">(sat)</span></figcaption>{payouts_svg}</figure></section>'
        f'<h2>History</h2><div class="table-wrap"><table class="board sortable"><thead><tr>{"".join(heads)}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    return layout(profile["model_display_name"], body)
