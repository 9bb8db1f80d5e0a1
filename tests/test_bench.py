import json

import pytest

from lastlayer.book.bench import device_slug, load_benches, main, markdown_table
from lastlayer.data import DataError


def test_quick_bench_writes_one_file_per_device(tmp_path, data_root, capsys):
    bench = main(tmp_path, quick=True)
    files = list((tmp_path / "book" / "results" / "bench").glob("*.json"))
    assert [f.name for f in files] == ["cpu.json"]
    assert json.loads(files[0].read_text()) == json.loads(json.dumps(bench))
    for key in ("device", "threads", "torch", "torchvision", "trainer", "papers", "quick"):
        assert key in bench, key
    assert "notebooks" not in bench  # wall times come from the results files only
    t = bench["trainer"]
    for key in ("canonical_images_per_s", "fit_images_per_s", "floor_images_per_s"):
        assert t[key] > 0, key
    assert t["graphed_floor_images_per_s"] is None  # CUDA graphs exist only on a GPU
    assert t["layout"] == "channels_last" and t["floor_nchw_images_per_s"] > 0  # fit's CPU layout, and NCHW's
    assert t["speedup_vs_canonical"] == pytest.approx(t["fit_images_per_s"] / t["canonical_images_per_s"])
    assert t["fit_over_floor"] == pytest.approx(t["floor_images_per_s"] / t["fit_images_per_s"])
    (g,) = bench["papers"]["digit_pairs"]
    assert g["models"] == 10 and g["speedup"] == pytest.approx(g["sequential_s_per_epoch"] / g["grouped_s_per_epoch"])
    table = markdown_table(bench)
    assert table in capsys.readouterr().out
    assert "digit_pairs/bench.py" in table and "graphed floor" not in table and "NCHW layout" in table


def test_benches_of_several_devices_load_cpu_first(tmp_path):
    folder = tmp_path / "book" / "results" / "bench"
    folder.mkdir(parents=True)
    for name, device in [("cuda-nvidia-h100", "cuda (NVIDIA H100)"), ("cpu", "cpu (2 threads, 2 cores)")]:
        (folder / f"{name}.json").write_text(json.dumps({"device": device}))
    assert [b["device"] for b in load_benches(tmp_path)] == ["cpu (2 threads, 2 cores)", "cuda (NVIDIA H100)"]


def test_device_slug():
    assert device_slug("cpu (2 threads, 2 cores)") == "cpu"
    assert device_slug("cuda (NVIDIA H100 80GB HBM3)") == "cuda-nvidia-h100-80gb-hbm3"


def test_bench_names_missing_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("LASTLAYER_DATA", str(tmp_path))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*LASTLAYER_DATA"):
        main(tmp_path, quick=True)
