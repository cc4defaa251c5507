"""Rendering of a :class:`~envs.RationingEnv` episode: a dashboard frame (``rgb_array``) and a text table (``ansi``).

:class:`Dashboard` keeps the episode so far (one row per step, filled only when the env
was made with a ``render_mode``) and draws it with PIL straight into a numpy array
(960 x 540 RGB, a few milliseconds per frame; no matplotlib figure per frame):

* header: scenario, day and time, step, utilisation, latency-target attainment, margin
  and return so far, a red ``COLLAPSED`` badge while the service is collapsed;
* tokens/s over the episode: served tokens stacked by tier, total demand (red line) and
  capacity (black line);
* quota multiplier of each tier (log scale, the action's bounds);
* latency / target of each tier (log scale; above 1 is a miss, shaded);
* per tier, now: demand against served (bar), quota, latency / target, throttled users.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 960, 540
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PALETTE = ((150, 150, 150), (31, 119, 180), (148, 103, 189), (44, 160, 44), (255, 127, 14), (23, 190, 207),
           (140, 86, 75), (188, 189, 34), (227, 119, 194), (127, 127, 127))
INK, GRID, FAINT, RED, GREEN = (30, 30, 30), (225, 225, 225), (120, 120, 120), (200, 30, 30), (30, 140, 60)
LAT_RANGE = (0.1, 10.0)
#: x0, x1 of the time-series plots and their (top, bottom) rows.
PLOT_X = (62, 660)
PANELS = {"tokens": (52, 226), "quota": (254, 378), "latency": (406, 520)}
SIDE_X = (690, 950)


def _font(size: int, bold: bool = False) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:  # matplotlib (a dependency) ships DejaVu Sans
        import matplotlib

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def _si(x: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def _nice_top(x: float) -> tuple[float, float]:
    """A round upper bound >= x and a tick step (3-6 ticks)."""
    x = max(float(x), 1e-9)
    mag = 10 ** np.floor(np.log10(x))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * mag >= x:
            top = m * mag
            break
    step = top / (5 if m in (1.0, 10.0, 5.0) else 4)
    return top, step


class Dashboard:
    """The episode so far of a single env, drawn as a frame or a text table.

    ``params`` are the core's compiled :class:`~envs.params.Params`; :meth:`record` takes
    the info dict of each step as :class:`~envs.RationingEnv` returns it.
    """

    def __init__(self, params: Any, title: str) -> None:
        self.p, self.title = params, title
        self.tiers = list(params.tier_names)
        self.colors = [PALETTE[i % len(PALETTE)] for i in range(len(self.tiers))]
        E, T = params.episode_steps, len(self.tiers)
        self.capacity, self.demand_total = np.zeros(E, np.float32), np.zeros(E, np.float32)
        self.served, self.demand = np.zeros((E, T), np.float32), np.zeros((E, T), np.float32)
        self.quota, self.latency_ratio = np.ones((E, T), np.float32), np.ones((E, T), np.float32)
        self.margin, self.reward = np.zeros(E), np.zeros(E)
        self.n = 0
        self.last: dict[str, Any] | None = None
        self.fonts = {k: _font(s, b) for k, (s, b) in {"title": (15, True), "label": (12, True), "text": (12, False),
                                                       "small": (10, False)}.items()}
        self._background: Image.Image | None = None
        self._canvas: Image.Image | None = None  # background + time series drawn so far
        self._ymax, self._drawn = 0.0, 0
        self._glyphs: dict[tuple[str, str, str], tuple[Image.Image, int, int]] = {}

    def reset(self) -> None:
        self.n, self.last, self._canvas = 0, None, None

    def record(self, info: dict[str, Any]) -> None:
        """Append one step (the single env's info dict)."""
        k = self.n
        if k >= len(self.capacity):  # a longer episode than the scenario's (never with the env's own time limit)
            return
        to_s = 1.0 / self.p.dt_s
        self.capacity[k] = info["capacity_tokens"] * to_s
        self.served[k] = info["served_tokens"] * to_s
        self.demand[k] = info["demand_tokens"] * to_s
        self.demand_total[k] = self.demand[k].sum()
        self.quota[k] = info["quota_multiplier"]
        self.latency_ratio[k] = info["latency_s"] / self.p.latency_target_s
        self.margin[k] = info["margin_usd"]
        self.reward[k] = info["reward"]
        self.n, self.last = k + 1, info

    # ------------------------------------------------------------------ text
    def _when(self, step: int) -> str:
        hour = ((self.p.start_week_step + step) % self.p.steps_per_week) * self.p.dt_h
        return f"{DAYS[int(hour // 24) % 7]} {int(hour % 24):02d}:{int(round(hour % 1 * 60)):02d}"

    def ansi(self) -> str:
        """A text table of the last step (what ``render_mode="ansi"`` returns)."""
        n, E = self.n, self.p.episode_steps
        head = f"{self.title}  step {n}/{E}  {self._when(n)}"
        if self.last is None:
            return head + "  (no step yet)\n"
        i = self.last
        lines = [head + f"  margin so far ${_si(self.margin[:n].sum())}  return {self.reward[:n].sum():.2f}"
                 + ("  COLLAPSED" if i["collapsed"] else ""),
                 f"capacity {_si(self.capacity[n - 1])} tok/s  demand {_si(self.demand_total[n - 1])} tok/s  "
                 f"served {_si(self.served[n - 1].sum())} tok/s  utilisation {i['utilisation']:.0%}",
                 f"{'tier':<12}{'demand/s':>10}{'served/s':>10}{'throttled':>10}{'quota':>8}{'lat/target':>11}"
                 f"{'attained':>9}{'users':>10}"]
        for j, t in enumerate(self.tiers):
            lines.append(f"{t:<12}{_si(self.demand[n - 1, j]):>10}{_si(self.served[n - 1, j]):>10}"
                         f"{i['throttled_user_share'][j]:>10.0%}{self.quota[n - 1, j]:>8.2f}"
                         f"{self.latency_ratio[n - 1, j]:>11.2f}{i['latency_attainment'][j]:>9.0%}"
                         f"{_si(i['users'][j]):>10}")
        return "\n".join(lines) + "\n"

    # ----------------------------------------------------------------- frame
    def _x(self, steps: np.ndarray | float) -> np.ndarray:
        x0, x1 = PLOT_X
        return x0 + (np.asarray(steps, dtype=np.float64) + 0.5) * (x1 - x0) / self.p.episode_steps

    @staticmethod
    def _y_log(v: np.ndarray, lo: float, hi: float, panel: tuple[int, int]) -> np.ndarray:
        top, bottom = panel
        z = (np.log(np.clip(v, lo, hi)) - np.log(lo)) / (np.log(hi) - np.log(lo))
        return bottom - z * (bottom - top)

    def _static(self) -> Image.Image:
        """Axes, day grid, panel titles and the tier legend: drawn once, copied into every frame."""
        if self._background is not None:
            return self._background
        img = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
        d = ImageDraw.Draw(img)
        f, E, p = self.fonts, self.p.episode_steps, self.p
        x0, x1 = PLOT_X
        days = np.arange(E + 1)[((p.start_week_step + np.arange(E + 1)) % p.steps_per_day) == 0]
        every = max(1, int(np.ceil(len(days) / 10)))
        for top, bottom in PANELS.values():
            for s in days:
                x = float(self._x(s - 0.5))
                d.line([(x, top), (x, bottom)], fill=GRID)
            d.rectangle([x0, top, x1, bottom], outline=FAINT)
        for s in days[::every]:
            x = float(self._x(s - 0.5))
            if x < x1 - 20:
                d.text((x + 3, PANELS["latency"][1] + 2), self._when(int(s))[:3], font=f["small"], fill=FAINT)
        lo, hi = p.quota_min, p.quota_max
        for v in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0):
            if lo <= v <= hi:
                y = float(self._y_log(np.array(v), lo, hi, PANELS["quota"]))
                d.line([(x0, y), (x1, y)], fill=FAINT if v == 1.0 else GRID)
                d.text((x0 - 6, y), f"{v:g}x", font=f["small"], fill=FAINT, anchor="rm")
        for v in (0.1, 0.3, 1.0, 3.0, 10.0):
            y = float(self._y_log(np.array(v), *LAT_RANGE, PANELS["latency"]))
            d.line([(x0, y), (x1, y)], fill=RED if v == 1.0 else GRID)
            d.text((x0 - 6, y), f"{v:g}", font=f["small"], fill=FAINT, anchor="rm")
        top, _ = PANELS["latency"]
        y1 = float(self._y_log(np.array(1.0), *LAT_RANGE, PANELS["latency"]))
        shade = Image.new("RGB", (x1 - x0 - 1, int(y1 - top) - 1), (253, 236, 236))
        img.paste(shade, (x0 + 1, top + 1))
        titles = {"tokens": "tokens/s: served by tier (stacked), demand (red), capacity (black)",
                  "quota": "quota multiplier per tier (1 = nominal)",
                  "latency": "latency / target per tier (above 1: late)"}
        for name, text in titles.items():
            d.text((x0, PANELS[name][0] - 3), text, font=f["label"], fill=INK, anchor="lb")
        sx0, sx1 = SIDE_X
        d.text((sx0, PANELS["tokens"][0] - 3), "now, per tier", font=f["label"], fill=INK, anchor="lb")
        d.text((sx1, PANELS["tokens"][0] - 3), "bar: served / demand", font=f["small"], fill=FAINT, anchor="rb")
        self._background = img
        return img

    def _text(self, img: Image.Image, xy: tuple[float, float], text: str, font: str, fill: tuple[int, int, int],
              anchor: str = "la") -> None:
        """Draw text through a cache of rendered masks (FreeType rendering is most of a frame's cost otherwise)."""
        key = (text, font, anchor)
        hit = self._glyphs.get(key)
        if hit is None:
            if len(self._glyphs) > 4096:
                self._glyphs.clear()
            box = self.fonts[font].getbbox(text, anchor=anchor)
            mask = Image.new("L", (max(1, box[2] - box[0]), max(1, box[3] - box[1])), 0)
            ImageDraw.Draw(mask).text((-box[0], -box[1]), text, font=self.fonts[font], fill=255, anchor=anchor)
            hit = self._glyphs[key] = (mask, box[0], box[1])
        mask, dx, dy = hit
        img.paste(fill, (int(round(xy[0])) + dx, int(round(xy[1])) + dy), mask)

    def rgb_array(self) -> np.ndarray:
        """The dashboard of the episode so far: uint8 array (540, 960, 3)."""
        n, E, last = self.n, self.p.episode_steps, self.last
        img = self._plots().copy()
        d = ImageDraw.Draw(img)
        x0, x1 = PLOT_X
        self._text(img, (10, 8), self.title, "title", INK)
        day = min(n, E - 1) // self.p.steps_per_day + 1
        status = f"{self._when(n)}   day {day}/{max(1, -(-E // self.p.steps_per_day))}   step {n}/{E}"
        self._text(img, (WIDTH // 2 - 40, 9), status, "label", INK, "ma")
        if last is None:
            self._text(img, ((x0 + x1) / 2, sum(PANELS["tokens"]) / 2), "no step yet", "label", FAINT, "mm")
            return np.array(img)
        k = n - 1
        right = (f"utilisation {last['utilisation']:.0%}   margin ${_si(self.margin[:n].sum())}   "
                 f"return {self.reward[:n].sum():.1f}")
        self._text(img, (WIDTH - 10, 9), right, "label", INK, "ra")
        if last["collapsed"]:
            d.rectangle([WIDTH // 2 + 130, 6, WIDTH // 2 + 230, 26], fill=RED)
            self._text(img, (WIDTH // 2 + 180, 16), "COLLAPSED", "label", (255, 255, 255), "mm")
        cx = float(self._x(k))
        for top, bottom in PANELS.values():
            d.line([(cx, top), (cx, bottom)], fill=FAINT)
        self._side(img, d, k, last)
        return np.array(img)

    def _plots(self) -> Image.Image:
        """Background and the time series up to the last step, drawn incrementally (redrawn when the scale grows)."""
        n = self.n
        peak = max(float(self.capacity[:n].max(initial=0.0)), float(self.demand_total[:n].max(initial=0.0)), 1.0)
        ymax, tick = _nice_top(peak * 1.05)
        if self._canvas is None or ymax != self._ymax or n < self._drawn:
            self._canvas, self._ymax, self._drawn = self._static().copy(), ymax, 0
            top, bottom = PANELS["tokens"]
            for v in np.arange(tick, ymax + tick / 2, tick):
                y = bottom - v * (bottom - top) / ymax
                ImageDraw.Draw(self._canvas).line([(PLOT_X[0] + 1, y), (PLOT_X[1] - 1, y)], fill=GRID)
                self._text(self._canvas, (PLOT_X[0] - 6, y), _si(v), "small", FAINT, "rm")
            self._text(self._canvas, (PLOT_X[0] - 6, bottom), "0", "small", FAINT, "rm")
        if n > self._drawn:
            self._draw_steps(self._drawn, n)
            self._drawn = n
        return self._canvas

    def _draw_steps(self, a: int, b: int) -> None:
        """Draw steps ``a..b-1``: stacked columns, then the lines from step ``a-2`` (the columns cover their end)."""
        d = ImageDraw.Draw(self._canvas)
        top, bottom = PANELS["tokens"]
        scale = (bottom - top) / self._ymax
        edges = np.rint(self._x(np.arange(a, b + 1) - 0.5)).astype(int)
        cum = bottom - np.cumsum(self.served[a:b], axis=1) * scale
        prev = np.full(b - a, float(bottom))
        for s in range(b - a):
            xl, xr = edges[s], max(edges[s], edges[s + 1] - 1)
            for j, color in enumerate(self.colors):
                if cum[s, j] < prev[s] - 0.5:
                    d.rectangle([xl, int(round(cum[s, j])), xr, int(round(prev[s]))], fill=color)
                prev[s] = cum[s, j]
        lo = max(0, a - 2)
        xs = self._x(np.arange(lo, b))
        if b - lo == 1:
            xs = np.array([xs[0] - 1.0, xs[0] + 1.0])
        reps = len(xs) // (b - lo)

        def polyline(ys: np.ndarray, color: tuple[int, int, int]) -> None:
            d.line(list(zip(xs.tolist(), np.repeat(ys, reps).tolist())), fill=color, width=2)

        for series, color in ((self.demand_total, RED), (self.capacity, INK)):
            polyline(bottom - series[lo:b] * scale, color)
        quota = self._y_log(self.quota[lo:b], self.p.quota_min, self.p.quota_max, PANELS["quota"])
        latency = self._y_log(self.latency_ratio[lo:b], *LAT_RANGE, PANELS["latency"])
        for j in range(len(self.tiers) - 1, -1, -1):  # first tiers on top
            polyline(quota[:, j], self.colors[j])
            polyline(latency[:, j], self.colors[j])

    def _side(self, img: Image.Image, d: ImageDraw.ImageDraw, k: int, info: dict[str, Any]) -> None:
        sx0, sx1 = SIDE_X
        T = len(self.tiers)
        top, bottom = PANELS["tokens"][0] + 4, PANELS["latency"][1]
        row = min(78, (bottom - top) // max(T, 1))
        dmax = max(float(self.demand[k].max()), 1.0)
        for j, (name, color) in enumerate(zip(self.tiers, self.colors)):
            y = top + j * row
            d.rectangle([sx0, y + 2, sx0 + 10, y + 12], fill=color)
            self._text(img, (sx0 + 16, y), name, "label", INK)
            dem, srv = float(self.demand[k, j]), float(self.served[k, j])
            self._text(img, (sx1, y), f"{_si(srv)} / {_si(dem)} tok/s", "small", FAINT, "ra")
            by = y + 18
            d.rectangle([sx0, by, sx0 + (sx1 - sx0) * dem / dmax, by + 9], outline=color, fill=(245, 245, 245))
            if srv > 0:
                d.rectangle([sx0, by, sx0 + (sx1 - sx0) * min(srv, dem) / dmax, by + 9], fill=color)
            lat = float(self.latency_ratio[k, j])
            throttled = float(info["throttled_user_share"][j])
            self._text(img, (sx0, by + 13), f"quota {self.quota[k, j]:.2f}x", "text", INK)
            self._text(img, (sx0 + 92, by + 13), f"lat {lat:.2f}x", "text", RED if lat > 1.0 else GREEN)
            self._text(img, (sx1, by + 13), f"throttled {throttled:.0%}", "text", RED if throttled > 0.05 else INK,
                       "ra")
