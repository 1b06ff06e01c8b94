import pytest

from action_rec.data.datasets import (assign_splits, discover, group_of, select_classes, subsample_sources,
                                     with_regions)
from action_rec.data.items import DatasetError
from tests.conftest import REALVIDS


def test_folder_per_class(tiny_dataset, make_video):
    (tiny_dataset / "walking" / "notes.txt").write_text("not a video")
    make_video(tiny_dataset / "walking" / "nested" / "deep.avi", n_frames=5)
    items = discover(tiny_dataset)
    labels = sorted({it.label for it in items})
    assert labels == ["falling", "running", "walking"]
    assert len(items) == 13
    assert any(it.path.endswith("deep.avi") and it.label == "walking" for it in items)
    assert not any(it.path.endswith(".txt") for it in items)


def test_explicit_split_folders(tmp_path, make_video):
    for split in ("train", "val", "test"):
        for label in ("a", "b"):
            make_video(tmp_path / split / label / f"{split}{label}.mp4", n_frames=3)
    splits = assign_splits(discover(tmp_path))
    assert {s: sorted(it.label for it in v) for s, v in splits.items()} == {
        "train": ["a", "b"], "val": ["a", "b"], "test": ["a", "b"]}
    assert all(it.path.split("/")[-3] == "val" for it in splits["val"])


def test_empty_class_folder_is_an_error(tiny_dataset):
    (tiny_dataset / "sitting").mkdir()
    with pytest.raises(DatasetError, match="sitting.*no videos"):
        discover(tiny_dataset)


def test_wrong_path_says_how_to_get_data(tmp_path):
    with pytest.raises(DatasetError, match="action-rec synth"):
        discover(tmp_path / "missing")


def test_manifest_with_split_and_group(tmp_path, make_video):
    make_video(tmp_path / "v" / "a.mp4", n_frames=3)
    make_video(tmp_path / "v" / "b.mp4", n_frames=3)
    (tmp_path / "m.csv").write_text("path,label,split,group,notes\nv/a.mp4,walk,test,g1,x\n"
                                    f"{tmp_path}/v/b.mp4,run,,g2,y\n")
    items = discover(tmp_path / "m.csv")
    assert [(it.label, it.split, it.group) for it in items] == [("walk", "test", "g1"), ("run", None, "g2")]
    assert items[0].path == str(tmp_path / "v" / "a.mp4")


def test_regions_from_a_manifest_column_or_by_frame_size(tmp_path, make_video):
    """A manifest's `region` sets a clip's region; data.regions gives one to the clips of a frame size that have
    none; other sizes, and clips that cannot be opened, read whole frames."""
    make_video(tmp_path / "wide.mp4", n_frames=3, size=(64, 24))
    make_video(tmp_path / "wide_own.mp4", n_frames=3, size=(64, 24))
    make_video(tmp_path / "plain.mp4", n_frames=3, size=(32, 24))
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    (tmp_path / "m.csv").write_text('path,label,region\nwide.mp4,a,\nwide_own.mp4,a,"0,0,0.5,1"\nplain.mp4,b,\n'
                                    'bad.mp4,b,\n')
    items = discover(tmp_path / "m.csv")
    assert [it.region.text if it.region else None for it in items] == [None, "0,0,0.5,1", None, None]
    sized = with_regions(items, {"64x24": "0.5,0,1,1"})
    assert [it.region.text if it.region else None for it in sized] == ["0.5,0,1,1", "0,0,0.5,1", None, None]
    assert [it.path for it in sized] == [it.path for it in items] and with_regions(items, None) == items


@pytest.mark.parametrize("text,match", [
    ("file,label\nx.mp4,a\n", "missing column"),
    ("path,label\nnope.mp4,a\n", r"m.csv:2: video not found"),
    ("path,label\n,a\n", r"m.csv:2: empty"),
    ("path,label,split\nv.mp4,a,training\n", "split 'training'"),
    ('path,label,region\nv.mp4,a,"0.5,0,1"\n', r"m.csv:2: a region is four numbers"),
])
def test_bad_manifest_names_the_line(tmp_path, make_video, text, match):
    make_video(tmp_path / "v.mp4", n_frames=2)
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(DatasetError, match=match):
        discover(tmp_path / "m.csv")


def test_hash_split_is_deterministic_and_keeps_groups_together(tmp_path):
    from action_rec.data.items import VideoItem
    items = [VideoItem(f"/d/take{t}_Cam{c}.mp4", "x") for t in range(200) for c in (1, 2)]
    a = assign_splits(items, 0.2, 0.2, seed=1, group_pattern=r"(.*)_Cam\d")
    b = assign_splits(items, 0.2, 0.2, seed=1, group_pattern=r"(.*)_Cam\d")
    assert a == b
    side = {}
    for split, its in a.items():
        for it in its:
            side.setdefault(group_of(it, r"(.*)_Cam\d"), set()).add(split)
    assert all(len(s) == 1 for s in side.values())
    assert 0.1 < len(a["test"]) / len(items) < 0.3 and 0.1 < len(a["val"]) / len(items) < 0.3


def test_select_classes(tiny_dataset):
    names, items = select_classes(discover(tiny_dataset), ["walking", "falling"])
    assert names == ["walking", "falling"] and {it.label for it in items} == {"walking", "falling"}
    with pytest.raises(DatasetError, match="sitting"):
        select_classes(discover(tiny_dataset), ["sitting"])


@pytest.mark.skipif(not (REALVIDS / "MANIFEST.csv").exists(), reason="../shared/realvids not present")
def test_realvids_manifest_loads():
    items = discover(REALVIDS / "MANIFEST.csv")
    assert {"walking", "running", "falling", "other"} <= {it.label for it in items}
    names, kept = select_classes(items, ["walking", "running", "falling"])
    assert all(it.label != "other" for it in kept)


def _ucf(tmp_path, make_video, lists_dir="ucfTrainTestlist", videos_dir="UCF-101"):
    """The official layout: UCF-101/<Class>/*.avi beside ucfTrainTestlist/{classInd,trainlist01,...}.txt"""
    for name in ("v_Run_g01_c01", "v_Run_g02_c01", "v_Fall_g01_c01", "v_Fall_g02_c01"):
        cls = name.split("_")[1]
        make_video(tmp_path / videos_dir / cls / f"{name}.avi", n_frames=2)
    lists = tmp_path / lists_dir
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Fall\r\n2 Run\r\n")  # Windows line ends, as distributed
    (lists / "trainlist01.txt").write_text("Fall/v_Fall_g02_c01.avi 1\nRun/v_Run_g02_c01.avi 2\n\n")
    (lists / "testlist01.txt").write_text("Fall/v_Fall_g01_c01.avi\nRun/v_Run_g01_c01.avi\n")
    (lists / "trainlist02.txt").write_text("Fall/v_Fall_g01_c01.avi 1\n")
    (lists / "testlist02.txt").write_text("Run/v_Run_g02_c01.avi\n")
    return lists


def test_ucf101_split_files(tmp_path, make_video):
    lists = _ucf(tmp_path, make_video)
    got = {(it.path.split("/")[-1], it.label, it.split) for it in discover(lists)}
    assert got == {("v_Fall_g02_c01.avi", "Fall", "train"), ("v_Run_g02_c01.avi", "Run", "train"),
                   ("v_Fall_g01_c01.avi", "Fall", "test"), ("v_Run_g01_c01.avi", "Run", "test")}
    assert all((tmp_path / "UCF-101").samefile(it.path.rsplit("/", 2)[0]) for it in discover(lists))
    # the parent of both folders and a single list file (its split number) work too
    assert {it.path for it in discover(tmp_path)} == {it.path for it in discover(lists)}
    two = discover(lists / "testlist02.txt")
    assert [(it.label, it.split) for it in two] == [("Fall", "train"), ("Run", "test")]
    assert assign_splits(discover(lists))["test"] == [it for it in discover(lists) if it.split == "test"]


@pytest.mark.parametrize("name,text,match", [
    ("trainlist01.txt", "Fall/v_Fall_g02_c01.avi 7\n", r"trainlist01.txt:1: class index 7"),
    ("trainlist01.txt", "Fall/v_Fall_g02_c01.avi 1\nRun/v_Run_g02_c01.avi 1\n",
     r"trainlist01.txt:2: .*'Fall'.*'Run'"),
    ("testlist01.txt", "Fall/v_Fall_g01_c01.avi\nJump/v_Jump_g01_c01.avi\n", r"testlist01.txt:2: .*'Jump'"),
    ("testlist01.txt", "Fall/v_Fall_g01_c01.avi\n\nRun/v_Run_g09_c01.avi\n",
     r"testlist01.txt:3: video not found"),
    ("classInd.txt", "1 Fall\nRun\n", r"classInd.txt:2: expected"),
])
def test_bad_split_file_names_the_line(tmp_path, make_video, name, text, match):
    lists = _ucf(tmp_path, make_video)
    (lists / name).write_text(text)
    with pytest.raises(DatasetError, match=match):
        discover(lists)


def test_hmdb51_split_files(tmp_path, make_video):
    for cls, names in (("fall_floor", ("a.avi", "b.avi", "c.avi")), ("run", ("d.avi", "e.avi"))):
        for n in names:
            make_video(tmp_path / "hmdb51" / cls / n, n_frames=2)
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "fall_floor_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    (splits / "run_test_split1.txt").write_text("d.avi 2 \ne.avi 1 \n")
    (splits / "run_test_split2.txt").write_text("d.avi 1 \ne.avi 2 \n")
    got = sorted((it.path.split("/")[-1], it.label, it.split) for it in discover(splits))
    assert got == [("a.avi", "fall_floor", "train"), ("b.avi", "fall_floor", "test"),
                   ("d.avi", "run", "test"), ("e.avi", "run", "train")]  # c.avi: 0 = not in this split
    (splits / "run_test_split1.txt").write_text("d.avi 3\n")
    with pytest.raises(DatasetError, match=r"run_test_split1.txt:1: expected"):
        discover(splits)


def _sources():
    """40 sources of unequal size and class mix, like real footage collected from many repositories: one big
    fall dataset, a few walking/running collections, many single clips."""
    from action_rec.data.items import VideoItem

    items = [VideoItem(f"big/{i}.mp4", "falling", group="big-fall-lab") for i in range(30)]
    for s in range(9):
        items += [VideoItem(f"s{s}/{i}.mp4", ("walking", "running", "other")[s % 3], group=f"coll{s}")
                  for i in range(4)]
    labels = ["falling", "walking", "running"]
    items += [VideoItem(f"one{s}.mp4", labels[s % 3], group=f"single{s}") for s in range(30)]
    return items


def test_stratified_split_gives_val_every_class_and_keeps_sources_whole():
    items = _sources()
    for seed in range(5):
        s = assign_splits(items, 0.2, 0.0, seed=seed, stratify=True)
        assert not s["test"] and len(s["train"]) + len(s["val"]) == len(items)
        assert {it.label for it in s["val"]} == {"falling", "walking", "running", "other"}, seed
        train_groups, val_groups = ({it.group for it in s[k]} for k in ("train", "val"))
        assert not train_groups & val_groups
        for label in ("falling", "walking", "running"):  # about its share of each class (0.2), whole sources
            share = sum(it.label == label for it in s["val"]) / sum(it.label == label for it in items)
            assert 0.08 <= share <= 0.4, (seed, label, share)
    # deterministic, and the seed changes which sources go where
    a, b = (assign_splits(items, 0.2, 0.0, seed=0, stratify=True) for _ in range(2))
    assert a == b and a != assign_splits(items, 0.2, 0.0, seed=1, stratify=True)


def test_folds_hold_out_whole_sources_and_cover_every_free_clip_once():
    from action_rec.data.items import VideoItem

    items = _sources() + [VideoItem(f"synth/{sp}/{i}.mp4", "walking", split=sp)
                          for sp in ("train", "val", "test") for i in range(3)]
    seen = []
    for fold in range(5):
        s = assign_splits(items, 0.15, 0.15, stratify=True, folds=5, fold=fold)
        assert all(it.split is None for it in s["test"])  # explicit test clips leave the test split
        assert sum(it.split == "train" for it in s["train"]) == 3 and sum(it.split == "val" for it in s["val"]) == 3
        test_groups = {it.group for it in s["test"]}
        assert not test_groups & {it.group for it in s["train"] + s["val"]}
        assert "falling" in {it.label for it in s["test"]} or "big-fall-lab" in {it.group for it in s["train"]}
        seen += s["test"]
    free = [it for it in items if it.split is None]
    assert sorted(seen, key=lambda i: i.path) == sorted(free, key=lambda i: i.path)
    with pytest.raises(DatasetError, match="fold must be in 0..4"):
        assign_splits(items, folds=5, fold=5)


def test_manifest_group_column_and_several_sources(tmp_path, make_video, tiny_dataset):
    for name in ("a", "b", "c"):
        make_video(tmp_path / "real" / f"{name}.mp4", n_frames=3)
    (tmp_path / "real" / "MANIFEST.csv").write_text(
        "path,label,source_repo\na.mp4,falling,org/x\nb.mp4,walking,org/x\nc.mp4,walking,org/y\n")
    items = discover(tmp_path / "real" / "MANIFEST.csv", group_column="source_repo")
    assert [it.group for it in items] == ["org/x", "org/x", "org/y"]
    with pytest.raises(DatasetError, match="no column 'source'.*source_repo"):
        discover(tmp_path / "real" / "MANIFEST.csv", group_column="source")
    both = discover([str(tiny_dataset), str(tmp_path / "real" / "MANIFEST.csv")], group_column="source_repo")
    assert len(both) == 12 + 3 and {it.group for it in both[-3:]} == {"org/x", "org/y"}
    s = assign_splits(both, 0.3, 0.3, stratify=True)
    assert {it.group for it in s["train"]}.isdisjoint({it.group for it in s["val"] + s["test"]} - {None})


def test_a_clip_listed_twice_is_kept_once_and_two_labels_name_both_lines(tmp_path, make_video):
    from action_rec.data.datasets import scan

    a, b = make_video(tmp_path / "a.mp4", n_frames=3), make_video(tmp_path / "b.mp4", n_frames=3)
    m = tmp_path / "m.csv"
    (tmp_path / "sub").mkdir()
    m.write_text("path,label\na.mp4,walk\nb.mp4,fall\nsub/../a.mp4,walk\n")
    items, notes = scan(m)
    assert [(it.path, it.label) for it in items] == [(str(a), "walk"), (str(b), "fall")]
    assert items[0].where == f"{m}:2" and notes == [f"{m}:4: {tmp_path}/sub/../a.mp4 is listed again (first at "
                                                    f"{m}:2); counted once"]
    assert discover(m) == items
    m.write_text("path,label\na.mp4,walk\nb.mp4,fall\na.mp4,fall\n")
    with pytest.raises(DatasetError, match=rf"m.csv:4: .*a.mp4 is labelled 'fall' here but 'walk' at .*m.csv:2"):
        discover(m)
    m.write_text("path,label,split\na.mp4,walk,train\na.mp4,walk,test\n")
    with pytest.raises(DatasetError, match=r"m.csv:3: .*in split 'test' here but 'train' at .*m.csv:2"):
        discover(m)


def test_missing_videos_can_be_kept_for_reporting(tmp_path, make_video):
    make_video(tmp_path / "a.mp4", n_frames=3)
    m = tmp_path / "m.csv"
    m.write_text("path,label\na.mp4,walk\ngone.mp4,fall\n")
    with pytest.raises(DatasetError, match="m.csv:3: video not found"):
        discover(m)  # training still wants to hear about it at once
    assert [it.label for it in discover(m, allow_missing=True)] == ["walk", "fall"]


def test_a_learning_curve_subsample_keeps_every_class_as_whole_sources():
    """subsample_train: about the fraction of each class, whole (source, class) groups, at least one per class; a
    hash over sources alone lost every fall when falls come from few sources (one of them 37 of 61 in realtrain)."""
    from action_rec.data.items import VideoItem

    items = [VideoItem(f"falling/big{i}.mp4", "falling", group="big") for i in range(37)]
    items += [VideoItem(f"falling/s{k}_{i}.mp4", "falling", group=f"s{k}") for k in range(12) for i in range(2)]
    items += [VideoItem(f"walking/w{k}.mp4", "walking", group=f"w{k}") for k in range(20)]
    items += [VideoItem(f"walking/s0_w{i}.mp4", "walking", group="s0") for i in range(3)]
    items += [VideoItem("running/only.mp4", "running", group="r0")]
    items += [VideoItem("walking/fixed.mp4", "walking", split="train", group="w0")]
    for fraction in (0.1, 0.25, 0.5):
        kept = subsample_sources(items, fraction, seed=0)
        by = {c: [it for it in kept if it.label == c and it.split is None] for c in ("falling", "walking", "running")}
        assert all(by.values())  # every class, even one with a single source
        for c, total in (("falling", 61), ("walking", 23)):
            assert abs(len(by[c]) - fraction * total) <= max(2, 0.5 * fraction * total), (fraction, c, len(by[c]))
            groups = {it.group for it in by[c]}
            assert all(sum(it.group == g for it in by[c])
                       == sum(it.group == g and it.label == c and it.split is None for it in items)
                       for g in groups)  # whole sources
        assert kept[-1].split == "train" and [it for it in items if it in kept] == kept  # explicit split kept, order
    assert subsample_sources(items, 1.0) == items
