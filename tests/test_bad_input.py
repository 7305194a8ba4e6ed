"""The bad-input table: each wrong input gives exit code 2 and ONE line on stderr (what, where, what
to do), never a traceback; ``--debug`` shows the traceback instead.

Each test name is a row of the table: input -> message. Fixtures are built in tmp_path.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from neurokd.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {lines}"
    assert "Traceback" not in err
    line = lines[0]
    for needle in needles:
        assert needle.lower() in line.lower(), line
    return line


# ------------------------------------------------------------------ data folders

def test_missing_gsc_folder_names_the_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "data", "info", "gsc", "--data-dir", str(tmp_path / "nowhere"))
    assert_one_line_error(code, err, "nowhere")


def test_empty_gsc_folder_says_no_word_folders(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "data", "info", "gsc", "--data-dir", str(tmp_path / "empty"))
    assert_one_line_error(code, err, "empty")


def test_malformed_cifar10_batch_is_refused(capsys, tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (root / name).write_bytes(b"\x80\x02garbage")
    code, _, err = run_cli(capsys, "data", "info", "cifar10", "--data-dir", str(tmp_path))
    assert_one_line_error(code, err, "cifar")


def test_malicious_cifar10_pickle_is_refused_without_running_it(capsys, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (root / name).write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    code, _, err = run_cli(capsys, "data", "info", "cifar10", "--data-dir", str(tmp_path))
    assert_one_line_error(code, err)
    assert not marker.exists(), "the pickle was executed"


def test_unknown_dataset_lists_the_choices(capsys):
    code, _, err = run_cli(capsys, "data", "info", "mnist")
    assert_one_line_error(code, err, "mnist", "digits")


# ------------------------------------------------------------------ NIR files

def test_truncated_nir_file_is_refused(capsys, tmp_path):
    import torch

    from neurokd.exporters.to_nir import student_to_nir, write_nir
    from neurokd.models import build_student

    torch.manual_seed(0)
    path = tmp_path / "good.nir"
    write_nir(student_to_nir(build_student("mlp", (64,), 10, timesteps=2, hidden=(8,))), path)
    bad = tmp_path / "truncated.nir"
    bad.write_bytes(path.read_bytes()[: 700])
    code, _, err = run_cli(capsys, "import", str(bad))
    assert_one_line_error(code, err, "truncated.nir")


def test_non_hdf5_nir_file_is_refused(capsys, tmp_path):
    bad = tmp_path / "notes.nir"
    bad.write_text("this is not HDF5")
    code, _, err = run_cli(capsys, "import", str(bad))
    assert_one_line_error(code, err, "notes.nir", "hdf5")


def _write_graph(path, nodes, edges):
    import nir

    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


def _chain(w, neuron):
    import nir

    n_out, n_in = w.shape
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Affine(weight=w, bias=np.zeros(n_out, np.float32)),
        "lif": neuron,
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    return nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")]


def test_nir_graph_with_nan_weights_names_the_node(capsys, tmp_path):
    import nir

    w = np.ones((3, 2), np.float32)
    w[0, 0] = np.nan
    nodes, edges = _chain(w, nir.IF(r=np.ones(3), v_threshold=np.ones(3)))
    _write_graph(tmp_path / "nan.nir", nodes, edges)
    code, _, err = run_cli(capsys, "import", str(tmp_path / "nan.nir"))
    assert_one_line_error(code, err, "fc")


def test_nir_graph_with_negative_tau_names_the_node(capsys, tmp_path):
    import nir

    lif = nir.LIF(tau=-np.ones(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    nodes, edges = _chain(np.ones((3, 2), np.float32), lif)
    _write_graph(tmp_path / "tau.nir", nodes, edges)
    code, _, err = run_cli(capsys, "import", str(tmp_path / "tau.nir"), "--dt", "1e-4")
    assert_one_line_error(code, err, "lif", "tau")


def test_nir_graph_with_shape_mismatch_names_the_node(capsys, tmp_path):
    import nir

    nodes, edges = _chain(np.ones((3, 2), np.float32), nir.IF(r=np.ones(4), v_threshold=np.ones(4)))
    _write_graph(tmp_path / "shape.nir", nodes, edges)
    code, _, err = run_cli(capsys, "import", str(tmp_path / "shape.nir"))
    assert_one_line_error(code, err, "lif")


def test_nir_graph_with_dangling_edge_names_the_edge(capsys, tmp_path):
    import nir

    nodes, edges = _chain(np.ones((3, 2), np.float32), nir.IF(r=np.ones(3), v_threshold=np.ones(3)))
    _write_graph(tmp_path / "dangling.nir", nodes, edges + [("lif", "ghost")])
    code, _, err = run_cli(capsys, "import", str(tmp_path / "dangling.nir"))
    assert_one_line_error(code, err, "ghost")


def test_missing_nir_file_names_the_path(capsys, tmp_path):
    code, _, err = run_cli(capsys, "import", str(tmp_path / "absent.nir"))
    assert code == 2 and "absent.nir" in err and "Traceback" not in err


# ------------------------------------------------------------------ run folders

def test_report_on_folder_without_run_files_says_which_command_makes_them(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    code, _, err = run_cli(capsys, "report", str(tmp_path / "run"), "--out", str(tmp_path / "rep"))
    assert_one_line_error(code, err, "run", "neurokd")


def test_debug_flag_shows_the_traceback(capsys, tmp_path, monkeypatch):
    from neurokd.errors import NeurokdError

    monkeypatch.setenv("NEUROKD_DEBUG", "0")  # restored after the test: --debug sets it for the process

    with pytest.raises(NeurokdError):
        main(["--debug", "data", "info", "gsc", "--data-dir", str(tmp_path / "nowhere")])


def test_unknown_option_is_a_usage_error_with_exit_2(capsys):
    code, _, err = run_cli(capsys, "data", "info", "digits", "--no-such-option")
    assert code == 2 and "no-such-option" in err and "Traceback" not in err


# ------------------------------------------------------------------ resource limits

def test_dataset_too_large_for_memory_is_refused_with_the_estimate(capsys, tmp_path, monkeypatch):
    from conftest import write_cifar10  # the data tests' fixture builder

    write_cifar10(tmp_path)
    monkeypatch.setenv("NEUROKD_MEMORY_LIMIT", "1000")
    code, _, err = run_cli(capsys, "data", "info", "cifar10", "--data-dir", str(tmp_path))
    line = assert_one_line_error(code, err, "CIFAR-10", "needs about", "available")
    assert "KiB" in line or "MiB" in line


def test_simulation_too_large_for_memory_is_refused_before_lava_starts(capsys, tmp_path, monkeypatch):
    import multiprocessing

    import nir

    nodes, edges = _chain(np.ones((3, 2), np.float32), nir.IF(r=np.ones(3), v_threshold=np.ones(3)))
    _write_graph(tmp_path / "g.nir", nodes, edges)
    monkeypatch.setenv("NEUROKD_MEMORY_LIMIT", "2000")
    code, _, err = run_cli(capsys, "simulate", str(tmp_path / "g.nir"), "--random-input", "--samples", "50",
                           "--steps", "100", "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "needs about", "--samples")
    assert multiprocessing.active_children() == []
    assert not (tmp_path / "out" / "spikes.npz").exists()


def _as_if_lava_were_not_installed(monkeypatch) -> None:
    """This process as it is on the core (Python >= 3.12): ``import lava`` fails. Lava's modules already
    imported, and neurokd's Lava backend, are taken out of sys.modules for the test (monkeypatch puts them back)."""
    import sys

    for name in [n for n in sys.modules if n == "lava" or n.startswith("lava.")
                 or n in ("neurokd.hardware.engines.lava_backend", "neurokd.hardware.formats.netx")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "lava", None)


def test_without_lava_a_lava_path_stops_in_one_line_naming_the_311_stack(capsys, tmp_path, monkeypatch):
    import importlib

    import nir

    from neurokd.errors import NeurokdError
    from neurokd.hardware import lava_compat

    _as_if_lava_were_not_installed(monkeypatch)
    assert "lava-nc is not installed" in lava_compat.missing("lava.magma")
    with pytest.raises(NeurokdError, match=r"lava-nc is not installed.*Python 3\.11 stack.*--engine fast --verify 0"):
        importlib.import_module("neurokd.hardware.engines.lava_backend")
    with pytest.raises(NeurokdError, match="lava-dl is not installed"):
        lava_compat.import_netx()
    nodes, edges = _chain(np.ones((3, 2), np.float32), nir.IF(r=np.ones(3), v_threshold=np.ones(3)))
    _write_graph(tmp_path / "g.nir", nodes, edges)
    code, _, err = run_cli(capsys, "simulate", str(tmp_path / "g.nir"), "--random-input", "--steps", "5",
                           "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "lava-nc is not installed", "Python 3.11 stack")


# ------------------------------------------------------------------ options, checkpoints, run folders

@pytest.mark.parametrize("args, fragment", [
    (["-T", "0"], "timesteps"),
    (["--lambda-logits", "-1"], "lambda"),
    (["--alpha", "1.5"], "alpha"),
    (["--temperature", "0"], "temperature"),
    (["--method", "magic"], "magic"),
    (["--dataset", "imagenet"], "imagenet"),
    (["--reset", "soft"], "reset must be zero or subtract"),
])
def test_option_out_of_range_is_refused(capsys, tmp_path, args, fragment):
    code, _, err = run_cli(capsys, "train", "--out", str(tmp_path / "r"), *args)
    assert_one_line_error(code, err, fragment)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "digits"
    with pytest.raises(SystemExit) as info:
        main(["train", "--method", "baseline", "--teacher", "none", "--epochs", "1", "-T", "2",
              "--model-options", "hidden = [8]", "--out", str(run), "--quiet"])
    assert info.value.code == 0
    return run


def _copy_run(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_checkpoint_from_another_model_is_refused(capsys, tmp_path, tiny_run):
    import torch

    from neurokd.models import build_student

    run = _copy_run(tiny_run, tmp_path / "other")
    torch.save(build_student("mlp", (64,), 10, timesteps=2, hidden=(16, 4)).state_dict(), run / "student.pt")
    code, _, err = run_cli(capsys, "eval", str(run))
    assert_one_line_error(code, err, "student.pt")


def test_checkpoint_with_missing_keys_is_refused(capsys, tmp_path, tiny_run):
    import torch

    run = _copy_run(tiny_run, tmp_path / "missing")
    state = torch.load(run / "student.pt", weights_only=True)
    state.pop(next(iter(state)))
    torch.save(state, run / "student.pt")
    code, _, err = run_cli(capsys, "export", str(run), "--target", "nir")
    assert_one_line_error(code, err, "student.pt")


def test_malicious_checkpoint_is_refused_without_running_it(capsys, tmp_path, tiny_run):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    run = _copy_run(tiny_run, tmp_path / "evil")
    with open(run / "student.pt", "wb") as fh:
        pickle.dump({"net.fc1.weight": Evil()}, fh)
    code, _, err = run_cli(capsys, "eval", str(run))
    assert_one_line_error(code, err, "student.pt")
    assert not marker.exists(), "the checkpoint was executed"


def test_exporting_a_soft_reset_student_is_refused_naming_the_layer(capsys, tmp_path):
    run = tmp_path / "soft"
    with pytest.raises(SystemExit) as info:
        main(["train", "--method", "baseline", "--teacher", "none", "--epochs", "1", "-T", "2", "--reset", "subtract",
              "--model-options", "hidden = [8]", "--out", str(run), "--quiet"])
    assert info.value.code == 0
    assert 'reset = "subtract"' in (run / "config.toml").read_text()
    code, _, err = run_cli(capsys, "export", str(run))
    assert_one_line_error(code, err, "layer 'lif1': reset by subtraction has no NIR form")
    assert not (run / "model.nir").exists()


def test_run_folder_without_config_says_what_is_missing(capsys, tmp_path):
    (tmp_path / "notarun").mkdir()
    code, _, err = run_cli(capsys, "export", str(tmp_path / "notarun"), "--target", "nir")
    assert_one_line_error(code, err, "config.toml")


def test_fixed_point_overflow_is_refused_before_lava_starts(capsys, tmp_path):
    import multiprocessing

    import nir

    w = np.full((3, 2), 1e30, np.float32)
    w[0, 0] = 1e-30
    nodes, edges = _chain(w, nir.IF(r=np.ones(3), v_threshold=np.full(3, 1e-30)))
    _write_graph(tmp_path / "huge.nir", nodes, edges)
    code, _, err = run_cli(capsys, "simulate", str(tmp_path / "huge.nir"), "--random-input", "--steps", "5",
                           "--precision", "fixed", "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err)
    assert multiprocessing.active_children() == []
