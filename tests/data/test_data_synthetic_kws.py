"""The espeak-ng keyword corpus: layout, split by speaker, loading through the gsc front-end."""
from __future__ import annotations

import pytest
import torch
from scipy.io import wavfile

from jointopt.data import get_dataset, synthetic_kws
from jointopt.errors import DataError

needs_espeak = pytest.mark.skipif(synthetic_kws.espeak() is None, reason="espeak-ng not installed")


@needs_espeak
def test_generate_writes_the_speech_commands_layout_and_loads(tmp_path):
    corpus = synthetic_kws.generate(tmp_path / "synthetic_kws" / "corpus", speakers=3, quiet=True)
    words = sorted(p.name for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert words == sorted(synthetic_kws.WORDS) and len(words) == 35
    rate, wave = wavfile.read(next((corpus / "yes").glob("*_nohash_0.wav")))
    assert rate == 16000 and wave.dtype == "int16" and len(wave) == 16000 and abs(wave).max() > 3000
    val = (corpus / "validation_list.txt").read_text().split()
    test = (corpus / "testing_list.txt").read_text().split()
    speakers = lambda rels: {r.split("/")[1].split("_")[0] for r in rels}  # noqa: E731
    assert len(val) == len(test) == 35 and not speakers(val) & speakers(test)
    assert len(list((corpus / "_background_noise_").glob("*.wav"))) == 5
    ds = get_dataset("synthetic_kws", tmp_path)
    assert "espeak-ng" in ds.substitute and ds.input_shape == (1, 49, 10)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (12, 12, 12)  # 10 keywords + 1 unknown + 1 silence
    assert torch.bincount(ds.test.y, minlength=12).tolist() == [1] * 12
    with pytest.raises(DataError, match="already exists"):
        synthetic_kws.generate(corpus, speakers=3)


def test_missing_corpus_says_how_to_make_it(tmp_path):
    with pytest.raises(DataError, match="synth-kws --out"):
        get_dataset("synthetic_kws", tmp_path, download=False)
