"""`action-rec`: one command for the whole pipeline.

fit/validate/test/predict go through LightningCLI (YAML configs, typed arguments, unknown keys are
errors); synth, extract and backbones are small commands of their own.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import os
import sys
from pathlib import Path

USAGE = """usage: action-rec COMMAND [options]

Commands:
  synth       render the built-in synthetic walking/running/falling dataset
  extract     extract backbone features of a config's dataset into the cache (fit does this too)
  fit         train (LightningCLI): action-rec fit --config configs/quickstart.yaml
  validate    score a checkpoint on the validation split (--config ... --ckpt_path ...)
  test        score a checkpoint on the test split (--config ... --ckpt_path ...)
  predict     label the test split's videos with a checkpoint; writes predictions.csv
  backbones   list the available frozen backbones

Run `action-rec COMMAND --help` for a command's options.
"""

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
TOP_LEVEL_KEYS = ("seed_everything", "trainer", "model", "data", "ckpt_path")


class ConfigError(ValueError):
    pass


def _suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"


def check_config(path: str) -> None:
    """Friendly, early errors for misspelt keys (jsonargparse would reject them too, less kindly)."""
    import lightning as L
    import yaml

    from .classifier import ActionClassifier
    from .data import ActionDataModule

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    cfg = yaml.safe_load(p.read_text()) or {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{p}: a config is a YAML mapping of {', '.join(TOP_LEVEL_KEYS)}")
    sections = {"data": ActionDataModule, "model": ActionClassifier, "trainer": L.Trainer}
    for key, value in cfg.items():
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{p}: unknown key '{key}'{_suggest(key, TOP_LEVEL_KEYS)}")
        if key in sections and isinstance(value, dict):
            valid = [n for n in inspect.signature(sections[key].__init__).parameters if n != "self"]
            for sub in value:
                if sub not in valid and sub not in ("class_path", "init_args"):
                    raise ConfigError(f"{p}: unknown key '{key}.{sub}'{_suggest(sub, valid)}")


def cmd_synth(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="action-rec synth", description=(
        "Render procedurally animated videos of a person walking, running and falling into "
        "OUT/{train,val,test}/<class>/*.mp4. Deterministic for a seed; existing clips are kept."))
    ap.add_argument("--out", default="data/synth", help="output folder (default: %(default)s)")
    ap.add_argument("--train", type=int, default=60, help="clips per class in train (%(default)s)")
    ap.add_argument("--val", type=int, default=15, help="clips per class in val (%(default)s)")
    ap.add_argument("--test", type=int, default=30, help="clips per class in test (%(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args(argv)
    from .synth import synthesize

    counts = synthesize(a.out, a.train, a.val, a.test, seed=a.seed, workers=a.workers)
    print(f"synthetic dataset in {a.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_backbones(argv: list[str]) -> int:
    """List the registered frozen backbones."""
    argparse.ArgumentParser(prog="action-rec backbones", description=cmd_backbones.__doc__).parse_args(argv)
    from .backbones import list_backbones

    for name in list_backbones():
        print(name)
    return 0


def cmd_extract(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: action-rec extract --config CONFIG.yaml [--data.KEY VALUE ...]\n\n"
              "Extracts the features of every video of the config's dataset once into data.cache_dir;\n"
              "videos already extracted (same path, size and mtime) are skipped, bad ones reported.")
        return 0
    from .training import ActionCLI

    cli = ActionCLI(args=argv, run=False)  # parses and checks the whole config, builds the data module
    cli.datamodule.prepare_data()
    print(cli.datamodule.report.summary())
    print(f"cache: {cli.datamodule.cache.dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    explicit = argv is not None  # LightningCLI warns when given args that are also sys.argv
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        for i, a in enumerate(rest):
            if a == "--config" and i + 1 < len(rest):
                check_config(rest[i + 1])
            elif a.startswith("--config="):
                check_config(a.split("=", 1)[1])
        if cmd == "synth":
            return cmd_synth(rest)
        if cmd == "backbones":
            return cmd_backbones(rest)
        if cmd == "extract":
            return cmd_extract(rest)
        if cmd in LIGHTNING_COMMANDS:
            from .training import ActionCLI

            ActionCLI(args=argv if explicit else None)
            return 0
    except (ConfigError, FileNotFoundError) as e:
        print(f"action-rec: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # friendly one-liners for the errors users cause; others keep their traceback
        from .backbones import BackboneWeightsError
        from .datasets import DatasetError
        from .inference import CheckpointError

        if isinstance(e, (DatasetError, BackboneWeightsError, CheckpointError)):
            print(f"action-rec: error: {e}", file=sys.stderr)
            return 2
        raise
    commands = ["synth", "extract", "backbones", *LIGHTNING_COMMANDS]
    print(f"action-rec: unknown command '{cmd}'{_suggest(cmd, commands)}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
