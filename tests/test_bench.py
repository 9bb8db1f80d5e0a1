import json

import pytest

from lastlayer.book.bench import main, markdown_table
from lastlayer.data import DataError


def test_quick_bench_writes_json_and_table(tmp_path, data_root, capsys):
    results = tmp_path / "book" / "results"
    results.mkdir(parents=True)
    (results / "geometry.json").write_text(json.dumps(
        {"paper": "geometry", "profile": "cpu", "device": "cpu (2 threads, 2 cores)", "seconds": 312.5}))
    main(tmp_path, quick=True)
    bench = json.loads((results / "bench.json").read_text())
    for key in ("device", "threads", "torch", "torchvision", "trainer", "group", "notebooks", "quick"):
        assert key in bench, key
    t = bench["trainer"]
    for key in ("canonical_images_per_s", "fit_images_per_s", "floor_images_per_s"):
        assert t[key] > 0, key
    assert t["speedup_vs_canonical"] == pytest.approx(t["fit_images_per_s"] / t["canonical_images_per_s"])
    assert t["fit_over_floor"] == pytest.approx(t["floor_images_per_s"] / t["fit_images_per_s"])
    (g,) = bench["group"]
    assert g["models"] == 10 and g["speedup"] == pytest.approx(
        g["sequential_s_per_epoch"] / g["grouped_s_per_epoch"])
    assert bench["notebooks"] == [{"paper": "geometry", "profile": "cpu", "device": "cpu (2 threads, 2 cores)",
                                   "seconds": 312.5}]
    table = markdown_table(bench)
    assert table in capsys.readouterr().out
    assert "| geometry | cpu | cpu (2 threads, 2 cores) | 5.2 |" in table
    assert f"| pair | 10 | {g['n']} |" in table


def test_bench_names_missing_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("LASTLAYER_DATA", str(tmp_path))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*LASTLAYER_DATA"):
        main(tmp_path, quick=True)
