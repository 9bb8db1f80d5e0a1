"""Parameters: strict command-line values, the parameters cell's declarations, and the checks before a run."""
import pytest

from lastlayer.book.params import ParameterError, check, format_value, parse_value, read_cell

CELL = """seed = 0                 # first seed
epochs = 25              # training epochs per round [>= 1]
lr = 0.1                 # learning rate [> 0, <= 10]
grid_lrs = [0.01, 0.1]   # learning rates of the grid [> 0]
sizes = [8, 16]          # channel widths
schedule = "cos"         # schedule [one of cos|plateau]
train_size = 2500        # training subset (None: all)
threads = 1              # torch threads [>= 0, null]
cap = None               # std cap
flag = True              # a switch
name = "x"               # a name [1/s is plain text]
seed = 7                 # a seed [>= 0, < 2**63]
device = "auto"          # where [matches auto|cpu|cuda(:\\d+)?]
runs = ["mnist:64"]      # data set:batch [matches (mnist|fashion):\\d+, length >= 1]
widths = [16, 32]        # widths [>= 1, length >= 2, length <= 3]
milestones = [10]        # epochs [>= 1, length >= 0]
"""


@pytest.fixture
def params():
    return read_cell(CELL)


@pytest.mark.parametrize("text,value", [
    ("3", 3), ("-2", -2), ("0.1", 0.1), ("1e-3", 1e-3), ("1.0e-3", 1e-3), ("2E5", 2e5), (".5", 0.5),
    ("true", True), ("false", False), ("null", None), ("[1, 2.5, true]", [1, 2.5, True]), ("[]", []),
    ("[[1, 2], [3]]", [[1, 2], [3]]), ('["mnist:64", fashion_mnist:64]', ["mnist:64", "fashion_mnist:64"]),
    ("adam", "adam"), ("", ""), ("off", "off"), ("yes", "yes"), ("'quoted, text'", "quoted, text"), (">=", ">="),
])
def test_cli_values_parse_strictly(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["[1, 2", "'open", "[1]]", "[1, 2] 3"])
def test_malformed_values_are_errors(text):
    with pytest.raises(ParameterError, match="cannot read"):
        parse_value(text)


@pytest.mark.parametrize("value", [3, 0.1, 1e-05, True, None, "adam", "", "3", "yes", "a, b", [1, [2.5, "x y"]], []])
def test_formatted_values_read_back_the_same(value):
    assert parse_value(format_value(value)) == value


def test_the_cell_declares_types_constraints_and_help(params):
    assert params["epochs"].bounds == [(">=", 1)] and params["epochs"].help == "training epochs per round"
    assert params["lr"].constraint == "> 0, <= 10" and params["schedule"].choices == ["cos", "plateau"]
    assert params["name"].help == "a name [1/s is plain text]" and params["name"].constraint == ""
    assert params["train_size"].nullable and params["threads"].nullable and params["cap"].nullable
    assert not params["epochs"].nullable and params["grid_lrs"].type_name == "list[float]"


@pytest.mark.parametrize("values,message", [
    ({"grid_lrs": ["fast"]}, "'grid_lrs' element 0: expects float, got str 'fast'"),
    ({"sizes": [8, 2.5]}, "'sizes' element 1: expects int, got float"),
    ({"epochs": None}, "'epochs' expects int, got null"),
    ({"flag": "yes"}, "'flag' expects bool, got str"),
    ({"flag": 1}, "'flag' expects bool"),
    ({"epochs": True}, "'epochs' expects int"),
    ({"epochs": 2.5}, "'epochs' expects int, got float 2.5"),
    ({"name": 3}, "'name' expects str, got int"),
    ({"lr": "1e-3"}, "YAML reads 1e-3 as text"),
    ({"epochs": 0}, "'epochs' 0 is out of range: must be >= 1"),
    ({"lr": 0.0}, "must be > 0"),
    ({"lr": 11}, "must be <= 10"),
    ({"grid_lrs": [0.1, -1.0]}, "element 1: -1.0 is out of range"),
    ({"schedule": "step"}, "'step' is not one of 'cos', 'plateau'"),
    ({"epoch": 3}, "unknown parameter\\(s\\) epoch"),
    ({"lr": float("inf")}, "'lr' inf is not a finite number"),
    ({"cap": float("nan")}, "'cap' nan is not a finite number"),
    ({"grid_lrs": [0.1, float("inf")]}, "element 1: inf is not a finite number"),
    ({"seed": -1}, "must be >= 0"),
    ({"seed": 2**63}, "9223372036854775808 is out of range: must be < 2\\*\\*63"),
    ({"seed": 2**64 + 5}, "must be < 2\\*\\*63"),
    ({"device": ""}, "'device' '' does not match"),
    ({"device": "off"}, "'device' 'off' does not match auto\\|cpu"),
    ({"device": "cuda:"}, "does not match"),
    ({"runs": []}, "'runs' \\[\\] has 0 element\\(s\\): its length must be >= 1"),
    ({"runs": ["mnist:64", "cifar:64"]}, "element 1: 'cifar:64' does not match"),
    ({"widths": [8]}, "its length must be >= 2"),
    ({"widths": [8, 8, 8, 8]}, "its length must be <= 3"),
])
def test_bad_values_are_rejected(params, values, message):
    with pytest.raises(ParameterError, match=message):
        check(values, params, "p")


def test_lengths_patterns_and_powers_are_declared(params):
    assert params["seed"].bounds == [(">=", 0), ("<", 2**63)] and params["seed"].constraint == ">= 0, < 2**63"
    assert params["widths"].length == [(">=", 2), ("<=", 3)] and params["milestones"].length == [(">=", 0)]
    assert params["device"].constraint == "matches auto|cpu|cuda(:\\d+)?"
    assert params["runs"].constraint == "matches (mnist|fashion):\\d+, length >= 1"
    out = check({"seed": 2**63 - 1, "device": "cuda:1", "milestones": [], "widths": [1, 2, 3],
                 "runs": ["fashion:256"]}, params, "p")
    assert out["seed"] == 2**63 - 1 and out["milestones"] == [] and out["device"] == "cuda:1"
    assert check({"device": "cuda"}, params, "p") == {"device": "cuda"}


def test_good_values_pass_and_ints_become_floats(params):
    out = check({"lr": 1, "grid_lrs": [1, 0.5], "train_size": None, "threads": None, "cap": 2.0, "name": ""},
                params, "p")
    assert out == {"lr": 1.0, "grid_lrs": [1.0, 0.5], "train_size": None, "threads": None, "cap": 2.0, "name": ""}
    assert isinstance(out["lr"], float) and isinstance(out["grid_lrs"][0], float)


@pytest.mark.parametrize("cell,message", [
    ("import os\n", "plain `name = literal` assignments"),
    ("epochs = 25 +\n", "syntax error on line 1"),
    ("n = len([1])\n", "'n' is not a literal"),
    ("epochs = 0  # epochs [>= 1]\n", "the default of 'epochs' breaks its own declaration"),
    ("epochs = 3  # epochs [>= 1, odd]\n", "cannot read the constraint 'odd'"),
    ("epochs = 3  # epochs [length >= 1]\n", "declares a length but its default is not a list"),
    ("sizes = [1]  # sizes [length >= 2]\n", "the default of 'sizes' breaks its own declaration"),
    ("device = 'x'  # device [matches (cpu]\n", "the pattern '\\(cpu' is not a regular expression"),
])
def test_broken_declarations_are_named(cell, message):
    with pytest.raises(ParameterError, match=message):
        read_cell(cell)
