"""argparse types that check ranges while parsing, so a bad value is argparse's one-line usage error
(exit 2) naming the option, instead of a surprise later (`--workers -1`, `--threshold 2`, `--fall-k 0`)."""

from __future__ import annotations

import argparse
import math


def _number(kind, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int_at_least(low: int):
    """An int >= low (e.g. int_at_least(1) for counts of windows, int_at_least(0) for worker counts)."""
    def parse(text: str) -> int:
        value = _number(int, text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = f"int >= {low}"  # argparse names the type in some messages
    return parse


def float_between(low: float, high: float):
    """A float in [low, high] (e.g. a probability threshold)."""
    def parse(text: str) -> float:
        value = _number(float, text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {value:g}")
        return value
    parse.__name__ = f"number in [{low:g}, {high:g}]"
    return parse


def positive_float(text: str) -> float:
    value = _number(float, text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value:g}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # "unrecognized arguments: --thresh 0.5" -> add "— did you mean '--threshold'?"
        if message.startswith("unrecognized arguments:"):
            import difflib

            options = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            for arg in (a.split("=")[0] for a in message.split(":", 1)[1].split() if a.startswith("--")):
                # the option it abbreviates (what prefix matching would have picked), else the closest one
                close = [o for o in options if o.startswith(arg)]
                close = close if len(close) == 1 else difflib.get_close_matches(arg, options, n=1, cutoff=0.6)
                if close:
                    message += f" — did you mean '{close[0]}'?"
                    break
        super().error(message)


def parser(**kwargs) -> argparse.ArgumentParser:
    """An ArgumentParser that takes only whole option names (with prefix matching on, --thresh would
    silently mean --threshold, and a future option sharing a prefix would change what a script means),
    and suggests the closest option for an unknown one."""
    kwargs.setdefault("allow_abbrev", False)
    return _Parser(**kwargs)


def add_person_args(ap: argparse.ArgumentParser, tracks_help: str, main_person_help: str) -> None:
    """--tracks / --main-person / --max-tracks, shared by label, live and evaluate (person/both checkpoints)."""
    group = ap.add_argument_group("several people (checkpoints trained with features: person or both)")
    m = group.add_mutually_exclusive_group()
    m.add_argument("--tracks", dest="tracks", action="store_true", default=None, help=tracks_help)
    m.add_argument("--main-person", dest="tracks", action="store_false", help=main_person_help)
    group.add_argument("--max-tracks", type=int_at_least(1), default=8,
                       help="people followed at once, the largest boxes first (default: %(default)s)")
