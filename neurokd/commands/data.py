"""``neurokd data``: describe a dataset (``info``) and generate the espeak-ng keyword set (``synth-kws``)."""

from __future__ import annotations

import click

from neurokd.errors import NeurokdError


def parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> (key, value); VALUE becomes a bool (true/false), an int, a float, or stays a string."""
    if "=" not in text:
        raise NeurokdError(f"option {text!r} is not KEY=VALUE (e.g. -o words=35 -o unknown_silence=true)")
    key, value = (part.strip() for part in text.split("=", 1))
    key = key.replace("-", "_")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def describe(splits) -> str:
    """A dataset summary: samples per split and per class, input shape, classes, and loader notes."""
    import torch

    lines = [splits.summary(), "classes: " + ", ".join(splits.class_names)]
    counts = {}
    for split in ("train", "val", "test"):
        labels = getattr(splits, split).tensors[1]
        counts[split] = torch.bincount(labels, minlength=splits.num_classes).tolist()
    width = max(len("class"), *(len(c) for c in splits.class_names))
    lines.append(f"{'class':<{width}}  {'train':>7}  {'val':>7}  {'test':>7}")
    for i, name in enumerate(splits.class_names):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{counts[s][i]:>7}" for s in ("train", "val", "test")))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{sum(counts[s]):>7}" for s in ("train", "val", "test")))
    info = splits.info
    if "speakers" in info:
        lines.append("speakers: " + ", ".join(f"{s} {n}" for s, n in info["speakers"].items()))
    if "features" in info:
        f = info["features"]
        lines.append(f"features: MFCC {f['n_mfcc']} x {f['frames']} frames ({f['n_mels']} mels, window "
                     f"{f['win_length']}, hop {f['hop_length']}, n_fft {f['n_fft']}, {f['fmin']:g}-{f['fmax']:g} Hz), "
                     "standardised with train statistics")
    if "normalisation" in info and "mean" in info["normalisation"] and "features" not in info:
        lines.append(f"normalisation: mean {info['normalisation']['mean']}, std {info['normalisation']['std']}")
    if "cache" in info and info["cache"].get("path"):
        state = "reused" if info["cache"]["hit"] else "written"
        lines.append(f"feature cache: {info['cache']['path']} ({state}, {info.get('extract_seconds', 0):.2f} s)")
    if "source" in info:
        lines.append(f"source: {info['source']}")
    return "\n".join(lines)


@click.group("data")
def data() -> None:
    """Dataset tools: describe a dataset, generate the espeak-ng keyword set."""


@data.command("info")
@click.argument("name")
@click.option("--data-dir", type=click.Path(), default=None, help="Folder of the dataset (gsc, cifar10, synth-kws).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed passed to the loader.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Loader option, repeatable, e.g. -o words=35 -o unknown_silence=true -o n_mfcc=20.")
def info(name: str, data_dir: str | None, seed: int, options: tuple[str, ...]) -> None:
    """Load dataset NAME and print samples per split and per class, input shape and classes."""
    from neurokd.data import load

    kwargs = dict(parse_option(o) for o in options)
    try:
        splits = load(name, data_dir, seed, **kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise NeurokdError(f"dataset {name!r} has no such option: {exc}") from exc
        raise
    click.echo(describe(splits))


@data.command("synth-kws")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder to write (default ~/.cache/neurokd/synth-kws, where the synth-kws loader looks).")
@click.option("--per-word", type=click.IntRange(min=1), default=None,
              help="Utterances per word [default: 300].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--words", default=None, help="Comma-separated words [default: the 10 command words].")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="espeak-ng processes in parallel.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def synth_kws(out: str | None, per_word: int | None, seed: int, words: str | None, workers: int,
              no_progress: bool) -> None:
    """Write a keyword set spoken by espeak-ng in the Speech Commands layout (resumable)."""
    from neurokd.data.synth_kws import COMMAND_WORDS, DEFAULT_PER_WORD, generate_synth_kws

    word_list = [w for w in (words.split(",") if words else COMMAND_WORDS) if w.strip()]
    summary = generate_synth_kws(out, per_word=per_word or DEFAULT_PER_WORD, seed=seed, words=word_list,
                                 workers=workers, progress=not no_progress)
    u, s = summary["utterances"], summary["speakers"]
    click.echo(f"synth-kws: {summary['out']}: {summary['created']} WAVs written, {summary['skipped']} kept, "
               f"{summary['seconds']:.1f} s")
    click.echo(f"utterances: train {u['train']}, val {u['val']}, test {u['test']}; "
               f"speakers: train {s['train']}, val {s['val']}, test {s['test']}")
    if summary["accents_missing_here"]:
        click.echo("accents this espeak-ng lacks (skipped): " + ", ".join(summary["accents_missing_here"]))
    click.echo(f"load it with: neurokd data info synth-kws --data-dir {summary['out']}")
