"""The examples of the "Bring your own device" section run as written."""
import re
from pathlib import Path

import pytest

from cost_fixtures import make_stats
from jointopt.cost_models.lut import LutCost
from jointopt.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    for candidate in (ROOT / "docs" / "cost_models.md", ROOT / "README.md"):
        if candidate.is_file() and "## Bring your own device" in candidate.read_text(encoding="utf-8"):
            return candidate.read_text(encoding="utf-8")
    pytest.fail("no document has the 'Bring your own device' section")


def _block(language: str, contains: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", _section(), flags=re.S)
    matching = [b for b in blocks if contains in b]
    assert matching, f"no ```{language} block containing {contains!r}"
    return matching[0]


def test_the_twenty_line_cost_model_passes_the_kit(tmp_path, capsys):
    code = _block("python", "class MyChipEnergy")
    assert len(code.strip().splitlines()) <= 25
    path = tmp_path / "my_chip.py"
    path.write_text(code)
    assert main(["cost-models", "--check", f"{path}:MyChipEnergy", "--models", "resnet8"]) == 0
    assert "All checks passed" in capsys.readouterr().out


def test_the_vectorised_form_passes_the_kit_and_is_used(tmp_path):
    import torch

    import jointopt
    from jointopt.testing import check_batch_cost

    code = _block("python", "class MyChipEnergy").replace("import CostModel, LayerStats",
                                                          "import CostModel, LayerBatch, LayerStats")
    path = tmp_path / "my_chip_fast.py"
    path.write_text(code + "\n" + _block("python", "def batch_cost(self, batch: LayerBatch)"))
    model = jointopt.get_cost_model(f"{path}:MyChipEnergy")
    assert model.has_batch_cost()
    net = jointopt.convert(jointopt.create_model("dscnn").eval(), torch.randn(2, 1, 49, 10))
    assert check_batch_cost(model, net)
    assert main(["cost-models", "--check", f"{path}:MyChipEnergy", "--models", "resnet8"]) == 0


def test_the_example_table_reads_and_answers(tmp_path):
    path = tmp_path / "my_device.csv"
    path.write_text(_block("csv", "kind,kernel"))
    model = LutCost.from_file(path)
    assert (model.name, model.unit, model.format(2210)) == ("my_mcu", "us", "2.21 ms")
    layer = make_stats(cin=16, cout=16, out=(32, 32), weight_bits=(4, 8), counts=[0, 16])
    assert float(model.layer_cost(layer)) == 2210
    half = make_stats(cin=16, cout=16, out=(32, 32), weight_bits=(4, 8), counts=[0, 12])
    assert float(model.layer_cost(half)) == pytest.approx((1150 + 2210) / 2)
