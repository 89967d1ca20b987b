"""Configs are checked when they are built, frozen, typed on the command line, and round-trip through YAML."""
import dataclasses
import subprocess
import sys

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import jointopt
from jointopt.cli.main import build_parser, main
from jointopt.cli.search import resolve_config
from jointopt.config import (SECTIONS, Config, CostConfig, DataConfig, FinetuneConfig, ModelConfig, PhaseConfig,
                             SearchPhaseConfig, SpaceConfig, TunerConfig)
from jointopt.errors import ConfigError

# (how the bad config is built, the section and keys of the same value for from_dict, what the message says)
INVALID = [
    (lambda: Config(tuner=TunerConfig(trials=0)), {"tuner": {"trials": 0}}, "tuner.trials=0 must be >= 1"),
    (lambda: Config(tuner=TunerConfig(lambda_min=-1, lambda_max=1)), {"tuner": {"lambda_min": -1, "lambda_max": 1}},
     "tuner.lambda_min=-1.0 and lambda_max=1.0 must satisfy 0 < lambda_min <= lambda_max"),
    (lambda: Config(tuner=TunerConfig(sampler="bogus")), {"tuner": {"sampler": "bogus"}},
     "tuner.sampler='bogus'; choose auto, adaptive, spread, tpe, nsga2, random"),
    (lambda: Config(data=DataConfig(val_fraction=5)), {"data": {"val_fraction": 5}},
     "data.val_fraction=5.0 must be in (0, 1)"),
    (lambda: Config(tuner=TunerConfig(lambda_min=0.1)), {"tuner": {"lambda_min": 0.1}},
     "set both tuner.lambda_min and tuner.lambda_max"),
    (lambda: Config(tuner=TunerConfig(sampler="tpe")), {"tuner": {"sampler": "tpe"}},
     "tuner.sampler='tpe' samples λ from a range"),
    (lambda: Config(tuner=TunerConfig(baselines=[8, 0])), {"tuner": {"baselines": [8, 0]}},
     "tuner.baselines=[8, 0] has the width 0"),
    (lambda: Config(search=SearchPhaseConfig(epochs=0)), {"search": {"epochs": 0}}, "search.epochs=0 must be >= 1"),
    (lambda: Config(warmup=PhaseConfig(epochs=-1)), {"warmup": {"epochs": -1}}, "warmup.epochs=-1 must be >= 0"),
    (lambda: Config(finetune=FinetuneConfig(lr=0)), {"finetune": {"lr": 0}}, "finetune.lr=0.0 must be > 0"),
    (lambda: Config(finetune=FinetuneConfig(distill_weight=2)), {"finetune": {"distill_weight": 2}},
     "finetune.distill_weight=2.0 must be in [0, 1]"),
    (lambda: Config(search=SearchPhaseConfig(final_temperature=2.0)), {"search": {"final_temperature": 2.0}},
     "search.final_temperature=2.0 must be in (0, search.temperature=1.0]"),
    (lambda: Config(search=SearchPhaseConfig(sampling="argmax")), {"search": {"sampling": "argmax"}},
     "search.sampling='argmax'; choose one of softmax, gumbel, hard"),
    (lambda: Config(search=SearchPhaseConfig(max_steps=0)), {"search": {"max_steps": 0}},
     "search.max_steps=0 must be >= 1"),
    (lambda: Config(space=SpaceConfig(weight_bits=[0])), {"space": {"weight_bits": [0]}},
     "space.weight_bits=[0] has no non-zero width"),
    (lambda: Config(space=SpaceConfig(act_bits=[4, 32])), {"space": {"act_bits": [4, 32]}},
     "space.act_bits=[4, 32] has the bit-width 32, outside 0..16"),
    (lambda: Config(cost=CostConfig(second_lambda_min=5, second_lambda_max=1)),
     {"cost": {"second_lambda_min": 5, "second_lambda_max": 1}}, "cost.second_lambda_min=5.0 and second_lambda_max=1.0"),
    (lambda: Config(data=DataConfig(batch_size=0)), {"data": {"batch_size": 0}}, "data.batch_size=0 must be >= 1"),
    (lambda: Config(model=ModelConfig(name="")), {"model": {"name": ""}}, "model.name='' must name something"),
    (lambda: Config(threads=0), {"threads": 0}, "threads=0 must be >= 1"),
    (lambda: Config(seed=-1), {"seed": -1}, "seed=-1 must be >= 0"),
    (lambda: Config(version=2), {"version": 2}, "version=2: this jointopt reads config versions 1 to 1"),
    (lambda: Config(method="magnitud"), {"method": "magnitud"}, "did you mean 'magnitude'"),
    # wrong types
    (lambda: Config(search=SearchPhaseConfig(epochs="abc")), {"search": {"epochs": "abc"}},
     "search.epochs='abc' must be an integer"),
    (lambda: Config(search=SearchPhaseConfig(epochs=2.5)), {"search": {"epochs": 2.5}},
     "search.epochs=2.5 must be an integer"),
    (lambda: Config(data=DataConfig(augment="yes")), {"data": {"augment": "yes"}},
     "data.augment='yes' must be true or false"),
    (lambda: Config(warmup=PhaseConfig(lr=float("nan"))), {"warmup": {"lr": float("nan")}},
     "warmup.lr=nan must be a finite number"),
    (lambda: Config(space=SpaceConfig(weight_bits=8)), {"space": {"weight_bits": 8}},
     "space.weight_bits=8 must be a list of integers"),
    (lambda: Config(space=SpaceConfig(weight_bits=[0, "x"])), {"space": {"weight_bits": [0, "x"]}},
     "space.weight_bits[1]='x' must be an integer"),
    (lambda: Config(cost=CostConfig(target=3)), {"cost": {"target": 3}}, "cost.target=3 must be a string"),
    (lambda: Config(model=ModelConfig(kwargs=[1])), {"model": {"kwargs": [1]}}, "model.kwargs=[1] must be a mapping"),
    (lambda: Config(tuner=TunerConfig(trials=None)), {"tuner": {"trials": None}}, "tuner.trials=None must be an integer"),
    (lambda: Config(method="magnitude", methods={"magnitude": {"keep": ["a", 1]}}),
     {"method": "magnitude", "methods": {"magnitude": {"keep": ["a", 1]}}},
     "methods.magnitude.keep[0]='a' must be a number"),
]


@pytest.mark.parametrize("build, data, message", INVALID, ids=[m.split(" ")[0] for _, _, m in INVALID])
def test_an_invalid_value_is_refused_when_the_config_is_built(build, data, message):
    with pytest.raises(ConfigError) as built:
        build()
    assert message in str(built.value)
    with pytest.raises(ConfigError) as loaded:  # from_dict says the same
        Config.from_dict(data)
    assert str(loaded.value) == str(built.value)


def test_the_issue_examples_never_reach_a_study(tmp_path):
    """trials=0, lambda_min=-1, sampler='bogus', val_fraction=5: jointopt.search(Config(...)) cannot start."""
    for section, values in (("tuner", {"trials": 0}), ("tuner", {"lambda_min": -1, "lambda_max": 1}),
                            ("tuner", {"sampler": "bogus"}), ("data", {"val_fraction": 5})):
        with pytest.raises(ConfigError, match=f"{section}.{next(iter(values))}="):
            jointopt.search(Config(**{section: SECTIONS[section](**values)}), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_section_can_be_a_mapping_and_a_wrong_section_is_named():
    assert Config(tuner={"trials": 3}).tuner == TunerConfig(trials=3)
    with pytest.raises(ConfigError, match=r"unknown config key 'tuner.trial' \(did you mean 'tuner.trials'\?\)"):
        Config(tuner={"trial": 3})
    with pytest.raises(ConfigError, match="search must be a SearchPhaseConfig"):
        Config(search=PhaseConfig())


def test_replace_checks_too():
    config = Config()
    with pytest.raises(ConfigError, match="tuner.trials=0 must be >= 1"):
        dataclasses.replace(config, tuner=dataclasses.replace(config.tuner, trials=0))
    with pytest.raises(ConfigError, match="data.val_fraction=1.0"):
        config.override({"data.val_fraction": 1})
    longer = dataclasses.replace(config, search=dataclasses.replace(config.search, epochs=30))
    assert longer.search.epochs == 30 and config.search.epochs == 10


def test_values_are_normalised_to_their_field_type():
    phase = PhaseConfig(epochs=3.0, lr=1, max_steps=None)
    assert phase.epochs == 3 and type(phase.epochs) is int and type(phase.lr) is float
    assert PhaseConfig(lr="1e-3").lr == 0.001  # YAML 1.1 reads 1e-3 (no dot) as a string
    assert SpaceConfig(weight_bits=(0, 8)).weight_bits == [0, 8]  # a tuple becomes the list YAML can write


@pytest.mark.parametrize("cls", [Config, *SECTIONS.values()], ids=lambda c: c.__name__)
def test_every_config_is_frozen(cls):
    instance = cls()
    name = dataclasses.fields(instance)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, name, getattr(instance, name))


def test_a_config_keeps_its_own_copies_of_lists_and_mappings():
    bits, kwargs = [0, 8], {"width": 4}
    space, model = SpaceConfig(weight_bits=bits), ModelConfig(kwargs=kwargs)
    bits.append(4)
    kwargs["width"] = 99
    assert space.weight_bits == [0, 8] and model.kwargs == {"width": 4}


# -- --set: text read with the field's type -----------------------------------------------------------------
@pytest.mark.parametrize("text, key, expected", [
    ("search.epochs=3", "search.epochs", 3),
    ("search.lr=1e-3", "search.lr", 0.001),
    ("search.lr=2", "search.lr", 2.0),
    ("data.augment=false", "data.augment", False),
    ("data.augment=True", "data.augment", True),
    ("data.augment=no", "data.augment", False),
    ("data.augment=1", "data.augment", True),
    ("search.selector_lr=null", "search.selector_lr", None),
    ("search.selector_lr=0.01", "search.selector_lr", 0.01),
    ("search.max_steps=~", "search.max_steps", None),
    ("cost.second=none", "cost.second", None),
    ("data.root=/data/x,y", "data.root", "/data/x,y"),
    ("data.root='null'", "data.root", "null"),
    ("cost.target=mpic", "cost.target", "mpic"),
    ("space.act_bits=[2,4,8]", "space.act_bits", [2, 4, 8]),
    ("space.act_bits=2, 4", "space.act_bits", [2, 4]),
    ("tuner.baselines=[]", "tuner.baselines", []),
    ("cost.report=['ne16', 'mpic']", "cost.report", ["ne16", "mpic"]),
    ("model.kwargs={width: 16}", "model.kwargs", {"width": 16}),
    ("model.kwargs.width=16", "model.kwargs.width", 16),
    ("methods.magnitude.keep=[0.5,1]", "methods.magnitude.keep", [0.5, 1.0]),
    ("methods.magnitude.scope=global", "methods.magnitude.scope", "global"),
])
def test_set_reads_the_value_with_the_field_type(text, key, expected):
    value = Config.parse_overrides([text])[key]
    assert value == expected and type(value) is type(expected)
    if isinstance(expected, list):
        assert all(type(v) is type(e) for v, e in zip(value, expected))


@pytest.mark.parametrize("text, message", [
    ("search.epochs=abc", "search.epochs='abc' must be an integer"),
    ("search.epochs=3.5", "search.epochs='3.5' must be an integer"),
    ("search.epochs=null", "search.epochs='null' must be an integer"),  # not a field that may be null
    ("search.max_steps=x", "search.max_steps='x' must be an integer or null"),
    ("search.lr=fast", "search.lr='fast' must be a number"),
    ("data.augment=maybe", "data.augment='maybe' must be true or false"),
    ("space.act_bits=[4,eight]", "space.act_bits[1]='eight' must be an integer"),
    ("model.kwargs=[1, 2]", "model.kwargs=[1, 2] must be a mapping"),
    ("search.epoch=3", "unknown config key 'search.epoch' (did you mean 'search.epochs'?)"),
    ("seeds=3", "unknown config key 'seeds' (did you mean 'seed'?)"),
    ("tunr.trials=3", "'tunr' is not a config section (did you mean 'tuner'?)"),
    ("search.epochs.max=3", "'search.epochs' is a value (an integer), not a section"),
    ("methods.magnitude.scop=global", "unknown config key 'methods.magnitude.scop' (did you mean "
                                      "'methods.magnitude.scope'?)"),
    ("methods.magnitud.scope=global", "did you mean 'magnitude'"),
    ("methods.joint.x=1", "method 'joint' has no knobs of its own"),
    ("search.epochs", "must look like section.key=value"),
])
def test_set_errors_name_the_key_and_what_it_takes(text, message):
    with pytest.raises(ConfigError) as exc:
        Config().override([text])
    assert message in str(exc.value)


def test_set_on_the_command_line_gives_typed_values_and_one_line_errors(capsys, tmp_path):
    config = resolve_config(build_parser().parse_args(["search", "--set", "search.epochs=3", "--set",
                                                       "search.lr=0.01", "--set", "data.augment=true"]))
    assert config.search.epochs == 3 and type(config.search.epochs) is int
    assert config.search.lr == 0.01 and config.data.augment is True
    assert main(["search", "--set", "search.epochs=abc", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err == "jointopt: error: search.epochs='abc' must be an integer\n"
    assert not (tmp_path / "r").exists()


def test_options_win_over_set_and_cost_models_extend_the_set_report():
    args = build_parser().parse_args(["search", "--set", "tuner.trials=5", "--trials", "3", "--set",
                                      "cost.report=[bitops]", "--cost-model", "ne16", "--data-dir", "null"])
    config = resolve_config(args)
    assert config.tuner.trials == 3
    assert config.cost.report == ["bitops", "ne16"]
    assert config.data.root == "null"  # an option's value is taken as it is, not read as YAML


def test_override_keeps_unrelated_values_and_applies_together():
    base = Config.from_dict({"tuner": {"lambda_min": 0.1, "lambda_max": 10, "sampler": "spread"}})
    # each alone would be invalid (a sampler that needs a range without one): together they are fine
    changed = base.override(["tuner.sampler=adaptive", "tuner.lambda_min=null", "tuner.lambda_max=null"])
    assert changed.tuner.sampler == "adaptive" and changed.tuner.lambda_min is None
    assert dataclasses.replace(changed, tuner=base.tuner) == base
    assert base.override({"search.epochs": 4}).search.epochs == 4 and base.search.epochs == 10


# -- round trips ---------------------------------------------------------------------------------------------
widths = st.lists(st.integers(0, 16), min_size=1, max_size=5).filter(lambda b: any(b))
names = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
fractions = st.floats(0.001, 0.999)


@st.composite
def configs(draw):
    temperature = draw(st.floats(0.01, 10))
    ranged = draw(st.booleans())
    low = draw(st.floats(1e-4, 1e3))
    return Config(
        seed=draw(st.integers(0, 2 ** 31)), threads=draw(st.none() | st.integers(1, 64)), amp=draw(st.booleans()),
        model=ModelConfig(name=draw(names), kwargs=draw(st.dictionaries(names, st.integers() | names, max_size=3))),
        data=DataConfig(root=draw(st.none() | names), batch_size=draw(st.integers(1, 512)),
                        val_fraction=draw(fractions), augment=draw(st.booleans()),
                        limit_train=draw(st.none() | st.integers(1, 10 ** 6))),
        space=SpaceConfig(weight_bits=draw(widths), act_bits=draw(st.lists(st.integers(1, 16), min_size=1, max_size=3)),
                          exclude=draw(st.lists(names, max_size=3)), keep_init=draw(st.floats(-5, 5))),
        warmup=PhaseConfig(epochs=draw(st.integers(0, 500)), lr=draw(st.floats(1e-6, 1.0)),
                           max_steps=draw(st.none() | st.integers(1, 10 ** 4))),
        search=SearchPhaseConfig(epochs=draw(st.integers(1, 500)), selector_lr=draw(st.none() | st.floats(1e-5, 1)),
                                 temperature=temperature, final_temperature=temperature * draw(fractions),
                                 temperature_decay=draw(st.none() | st.floats(0, 1)),
                                 hard_fraction=draw(st.floats(0, 1)),
                                 sampling=draw(st.sampled_from(["softmax", "gumbel", "hard"]))),
        finetune=FinetuneConfig(distill=draw(st.booleans()), distill_weight=draw(st.floats(0, 1))),
        cost=CostConfig(target=draw(names), report=draw(st.lists(names, max_size=3)), second=draw(st.none() | names)),
        tuner=TunerConfig(trials=draw(st.integers(1, 100)), lambda_min=low if ranged else None,
                          lambda_max=low * draw(st.floats(1, 100)) if ranged else None,
                          sampler=draw(st.sampled_from(["auto", "adaptive", "spread", "tpe", "nsga2", "random"]
                                                       if ranged else ["auto", "adaptive"])),
                          baselines=draw(st.lists(st.integers(1, 16), max_size=3))),
    )


@settings(max_examples=60, deadline=None)
@given(configs())
def test_yaml_round_trip_gives_the_same_config(config):
    assert Config.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config
    assert Config.from_dict(yaml.safe_load(config.to_yaml())) == config


def _as_text(value) -> str:
    """A value written as a user would after --set KEY=."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{value}'"  # quoted: a string 'none' is not null
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(map(_as_text, value)) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def _leaves(data, prefix=""):
    for key, value in data.items():
        if isinstance(value, dict) and key in (*SECTIONS, "model"):
            yield from _leaves({k: v for k, v in value.items() if k != "kwargs"}, f"{prefix}{key}.")
        elif not isinstance(value, dict):
            yield prefix + key, value


@settings(max_examples=30, deadline=None)
@given(configs())
def test_every_value_written_as_set_text_reads_back_the_same(config):
    texts = [f"{key}={_as_text(value)}" for key, value in _leaves(config.to_dict())]
    assert len(texts) > 40
    assert Config().override(texts) == dataclasses.replace(config, model=dataclasses.replace(config.model, kwargs={}))


def test_building_the_default_config_imports_no_torch():
    code = ("import sys; from jointopt.config import Config; Config(); Config.from_dict({'tuner': {'trials': 2}}); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
