"""The package layout: one subpackage per pipeline stage, imported in one direction.

Read from the source with ast (nothing is imported but the old paths at the end): no import cycle between modules or
between stage packages, counting imports inside functions too; inference and the apps never reach training code;
package __init__s stay light, so the torch-free runtime stays torch-free; the flat module paths of earlier versions
still import.
"""

import ast
import importlib
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1] / "action_rec"
TRAINING = ("action_rec.training", "action_rec.data.datamodule")  # and everything under them
# what may import training code: the trainer itself and the `action-rec` command that dispatches to it
MAY_TRAIN = ("action_rec.training", "action_rec.data.datamodule", "action_rec.cli")
HEAVY = ("torch", "torchvision", "lightning", "torchmetrics", "ultralytics", "matplotlib", "onnx")


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _lazy_table(path: Path) -> dict[str, str]:
    """name -> module of a package __init__'s lazy_exports(__name__, {...}) table."""
    out = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_exports":
            package = ".".join(path.relative_to(ROOT.parent).parent.parts)
            for key, value in zip(node.args[1].keys, node.args[1].values):
                sub = key.value if not key.value.startswith(".") else package + key.value
                names = value.value if isinstance(value, ast.Constant) else ast.literal_eval(value)
                out.update(dict.fromkeys(names.split(), sub))
    return out


EXPORTS = {name: _lazy_table(p) for name, p in MODULES.items() if p.name == "__init__.py"}


def _imports(name: str) -> list[tuple[str, bool, int]]:
    """(imported module, not run at import time, line) for every import in module `name` (inside a function or an
    `if TYPE_CHECKING:` block: not run at import); `from pkg import x` counts as an import of pkg.x when that is a
    module, or of the module a package's lazy table says x comes from."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for stmt in tree.body if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)
                   for n in ast.walk(stmt)}
    top = {id(n) for stmt in tree.body for n in ast.walk(stmt)
           if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))} - typing_only
    for cls in (s for s in tree.body if isinstance(s, ast.ClassDef)):  # class bodies run at import, methods do not
        top |= {id(n) for stmt in cls.body if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
                for n in ast.walk(stmt)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            targets = [mod]
            for a in node.names:
                sub = f"{mod}.{a.name}"
                targets.append(sub if sub in MODULES else EXPORTS.get(mod, {}).get(a.name, mod))
        else:
            continue
        for t in targets:
            out.append((t, id(node) not in top, node.lineno))
    return out


IMPORTS = {name: _imports(name) for name in MODULES}


def _edges(lazy: bool = True) -> dict[str, set[str]]:
    """Module -> the action_rec modules it imports, with the packages importing them runs (their __init__s)."""
    graph = {}
    for name, imports in IMPORTS.items():
        deps = set()
        for target, inside, _ in imports:
            if target in MODULES and (lazy or not inside):
                parts = target.split(".")
                deps |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        deps.discard(name)
        graph[name] = {d for d in deps if not name.startswith(d + ".")}  # a package's own __init__ runs first anyway
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _reach(start: str, graph: dict[str, set[str]]) -> dict[str, str]:
    """Every module reachable from start -> the module that imports it on the way."""
    seen, todo = {start: ""}, [start]
    while todo:
        v = todo.pop()
        for w in graph.get(v, ()):
            if w not in seen:
                seen[w] = v
                todo.append(w)
    return seen


def _path(seen: dict[str, str], end: str) -> str:
    chain = [end]
    while seen[chain[-1]]:
        chain.append(seen[chain[-1]])
    return " -> ".join(reversed(chain))


def _stage(name: str) -> str:
    """The stage package of a module ("inference"), or "action_rec" for the modules at the top (cli.py)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and name in EXPORTS) else "action_rec"


def test_no_module_imports_itself_back():
    """No cycle between modules, counting the imports inside functions (they hide a cycle, not remove it)."""
    assert _cycles(_edges()) == []


def test_stages_import_one_way():
    """The stage packages form a DAG, so each stage's inputs come from earlier stages only."""
    stages = {}
    for v, ws in _edges().items():
        stages.setdefault(_stage(v), set()).update(_stage(w) for w in ws if _stage(w) != _stage(v))
    assert _cycles(stages) == []


def test_inference_and_apps_never_reach_training_code():
    """Whatever runs a model (inference, labelling, live, evaluation, export) never imports the trainer or the
    training DataModule, not even in a function: only training/, data/datamodule.py and the CLI do."""
    graph, bad = _edges(), []
    for name in MODULES:
        if name.startswith(MAY_TRAIN):
            continue
        seen = _reach(name, graph)
        bad += [_path(seen, m) for m in seen if m.startswith(TRAINING)]
        bad += [f"{name} imports {t} (line {line})" for t, _, line in IMPORTS[name]
                if t.startswith("lightning.pytorch.cli")]
    assert bad == []


def test_package_inits_import_nothing_heavy():
    """A package __init__ only lists its exports (imported on first use): importing one light module of a stage,
    such as the torch-free runtime, must not load the rest of it."""
    allowed = {"action_rec.utils.lazy", "action_rec.utils", "os", "action_rec"}
    got = {name: {t for t, _, _ in IMPORTS[name]} - allowed for name in EXPORTS}
    assert {k: v for k, v in got.items() if v} == {}


def test_lazy_exports_name_real_things():
    for name, export, module in [(n, e, m) for n, table in EXPORTS.items() for e, m in table.items()]:
        assert module in MODULES, (export, module)
        tree = ast.parse(MODULES[module].read_text())
        bound = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                 for a in n.names}
        bound |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        bound |= {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                  for t in ast.walk(n.targets[0] if isinstance(n, ast.Assign) else n.target) if isinstance(t, ast.Name)}
        assert export in bound, f"{name} exports {export} from {module}, which has no such name"


def test_the_torch_free_runtime_imports_no_heavy_module_at_import_time():
    """export/runtime.py (bundles on machines without torch) and what it imports at module level import none of the
    heavy stack at module level (tests/export checks the same by running it where torch cannot be imported)."""
    graph = _edges(lazy=False)
    seen = _reach("action_rec.export.runtime", graph)
    heavy = [f"{m} imports {t} (line {line})" for m in seen for t, inside, line in IMPORTS[m]
             if not inside and t.split(".")[0] in HEAVY]
    assert not heavy, heavy


# Every `from action_rec.X import Y` that README.md, scripts/ and tests/ used before the stage packages (ea1556f), for
# the X that are still there: the command line, and the modules that became a package of the same name. The internal
# flat modules (action_rec.errors, .stream, ...) moved without an alias; the README documents only these paths.
OLD_IMPORTS = {
    "cli": "check_config main",
    "backbones": "Backbone BackbonePrecisionError BackboneWeightsError DEFAULT_BATCH_SIZE FALL_DETECTION Preprocess build_backbone calibration_frames find_fall_detection_checkpoint list_backbones",
    "data": "ActionDataModule ClipWindows TrainWindows collate_clips source_weights take window_starts",
    "decision": "FallAlert FallRule decide fall_events",
    "evaluation": "evaluate load_eval_set",
    "export": "bundle_size export_bundle",
    "features": "FeatureCache extract_video",
    "inference": "CheckpointError Predictor load_classifier",
    "labeling": "InputError LabelRun find_videos label_videos load_predictor",
    "live": "build_parser main run",
    "model": "ActionLSTM",
    "synth": "ALL_CLASSES CLASSES SPLITS clip_seed plan_clip render_clip synthesize write_clip",
    "training": "format_results",
    "video": "VideoInfo VideoReadError clip_duration_s iter_sampled probe read_sampled",
}


def test_old_import_paths_still_work():
    missing = []
    for old, names in OLD_IMPORTS.items():
        module = importlib.import_module(f"action_rec.{old}")
        if hasattr(module, "__file__"):  # ours, not the old file of another checkout (an editable install's)
            assert Path(module.__file__).resolve().is_relative_to(ROOT), module.__file__
        missing += [f"from action_rec.{old} import {n}" for n in names.split() if not hasattr(module, n)]
    assert missing == []

