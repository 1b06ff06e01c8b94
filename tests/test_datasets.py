import pytest

from action_rec.datasets import DatasetError, assign_splits, discover, group_of, select_classes
from conftest import REALVIDS


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


@pytest.mark.parametrize("text,match", [
    ("file,label\nx.mp4,a\n", "missing column"),
    ("path,label\nnope.mp4,a\n", r"m.csv:2: video not found"),
    ("path,label\n,a\n", r"m.csv:2: empty"),
    ("path,label,split\nv.mp4,a,training\n", "split 'training'"),
])
def test_bad_manifest_names_the_line(tmp_path, make_video, text, match):
    make_video(tmp_path / "v.mp4", n_frames=2)
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(DatasetError, match=match):
        discover(tmp_path / "m.csv")


def test_hash_split_is_deterministic_and_keeps_groups_together(tmp_path):
    from action_rec.datasets import VideoItem
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
