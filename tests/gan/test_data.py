"""Tests of fwp.gan.data: folder loading, built-in datasets, the cache, and DataStream."""

from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fwp.gan import data as D
from fwp.gan.data import (
    DataError,
    DataStream,
    dataset_identity,
    datasets,
    folders,
    load_images,
    to_float,
    to_uint8,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def solid(path: Path, color, size=(12, 10), mode: str = "RGB") -> Path:
    """Write a one-colour image (size is (width, height)) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def load(source, size=(8, 8), channels=3, *, cache: Path, **kw) -> torch.Tensor:
    return load_images(str(source), size, channels, cache_dir=cache, progress=False, **kw)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# ------------------------------------------------------------------------------------ folders


def test_folder_formats_nested_sorted_and_case_insensitive(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "imgs"
    solid(root / "a.png", RED)
    solid(root / "b.JPG", GREEN)  # upper-case extension
    solid(root / "sub" / "deeper" / "c.webp", BLUE)
    solid(root / "sub" / "d.bmp", (255, 255, 0))
    (root / "notes.txt").write_text("not an image")
    out = load(root, (6, 6), cache=cache)
    assert out.shape == (4, 3, 6, 6) and out.dtype == torch.uint8
    # sorted by relative path: a.png, b.JPG, sub/d.bmp, sub/deeper/c.webp
    means = out.float().mean(dim=(2, 3))
    expected = torch.tensor([RED, GREEN, (255, 255, 0), BLUE], dtype=torch.float32)
    assert torch.allclose(means, expected, atol=6)  # jpeg/webp are lossy


def test_grayscale_sources_and_channels(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "gray"
    solid(root / "g.png", 100, mode="L")
    solid(root / "rgb.png", (200, 50, 10))
    rgb = load(root, (5, 5), 3, cache=cache)
    assert torch.equal(rgb[0, 0], rgb[0, 1]) and torch.equal(rgb[0, 1], rgb[0, 2])
    assert int(rgb[0, 0, 2, 2]) == 100
    gray = load(root, (5, 5), 1, cache=cache)
    assert gray.shape == (2, 1, 5, 5)
    assert int(gray[0, 0, 2, 2]) == 100
    expected_l = round(200 * 299 / 1000 + 50 * 587 / 1000 + 10 * 114 / 1000)  # ITU-R 601-2 luma
    assert abs(int(gray[1, 0, 2, 2]) - expected_l) <= 1


def test_unusual_modes_jpeg_draft_and_exif_orientation(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "modes"
    root.mkdir()
    Image.new("L", (300, 200), 90).save(root / "a_gray.jpg", quality=95)
    Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(root / "b_cmyk.jpg", quality=95)  # red
    Image.fromarray(np.full((10, 10), 65535, dtype=np.uint16)).save(root / "c_16bit.png")
    Image.new("1", (10, 10), 1).save(root / "d_bilevel.png")
    tall = Image.new("RGB", (20, 40), RED)  # stored tall, red on top, blue below ...
    tall.paste(BLUE, (0, 20, 20, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # ... shown rotated 90 degrees clockwise: wide, blue left, red right
    tall.save(root / "e_rotated.jpg", exif=exif, quality=95)
    out = load(root, (8, 16), cache=cache).float()
    assert out.shape == (5, 3, 8, 16)
    assert (out[0] - 90).abs().max() <= 3
    assert out[1, 0].mean() > 200 and out[1, 1:].mean() < 60
    assert (out[2] == 255).all() and (out[3] == 255).all()
    assert out[4, 2, :, :4].mean() > 200 and out[4, 0, :, -4:].mean() > 200


def test_transparency_is_composited_on_white(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "alpha"
    solid(root / "1_clear.png", (255, 0, 0, 0), mode="RGBA")  # fully transparent red
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 255))
    half.paste((0, 0, 0, 0), (0, 0, 8, 4))  # top half transparent, bottom half opaque black
    half.save(root / "2_half.png")
    solid(root / "3_la.png", (0, 0), mode="LA")  # transparent black, grayscale + alpha
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 255] + [255, 0, 0] + [0, 0, 0] * 254)
    pal.save(root / "4_palette.png", transparency=1)  # palette index 1 is transparent
    out = load(root, (8, 8), cache=cache)
    assert (out[0] == 255).all()
    assert (out[1, :, :3] == 255).all() and (out[1, :, 5:] == 0).all()
    assert (out[2] == 255).all()
    assert (out[3] == 255).all()


def test_non_square_source_is_resized_on_the_short_side_and_centre_cropped(
    tmp_path: Path, cache: Path
) -> None:
    root = tmp_path / "wide"
    img = Image.new("RGB", (80, 20), RED)  # 80 wide, 20 tall: red | green (middle 40) | blue
    img.paste(GREEN, (20, 0, 60, 20))
    img.paste(BLUE, (60, 0, 80, 20))
    root.mkdir()
    img.save(root / "wide.png")
    out = load(root, (10, 10), cache=cache)[0].float()  # 80x20 -> 40x10 -> centre 10x10 = green
    assert out.shape == (3, 10, 10)
    assert (out[1] > 240).all() and (out[0] < 15).all() and (out[2] < 15).all()

    out = load(root, (4, 16), cache=cache)[0].float()  # target 4 tall, 16 wide: all of the width
    assert out.shape == (3, 4, 16)
    assert out[0, :, 0].mean() > 240 and out[2, :, -1].mean() > 240 and out[1, :, 8].mean() > 240


def test_tall_target_from_square_source_keeps_the_middle_rows(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "stripes"
    img = Image.new("RGB", (30, 30), RED)
    img.paste(GREEN, (0, 10, 30, 20))
    root.mkdir()
    img.save(root / "s.png")
    out = load(root, (30, 10), cache=cache)  # a 3:1 tall target: scale 1, keep the middle column
    assert out.shape == (1, 3, 30, 10)
    assert (out[0, 0, 2:8] > 240).all() and (out[0, 1, 12:18] > 240).all()


def test_corrupt_files_are_reported_once_and_skipped(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "mixed"
    solid(root / "ok1.png", RED)
    (root / "broken.png").write_bytes(b"this is not a png at all")
    good_jpg = solid(root / "trunc.jpg", GREEN, size=(64, 64))
    good_jpg.write_bytes(good_jpg.read_bytes()[:40])  # truncated jpeg
    solid(root / "ok2.png", BLUE)
    with pytest.warns(UserWarning, match=r"skipped 2 of 4 image files") as record:
        out = load(root, cache=cache)
    assert len(record) == 1
    message = str(record[0].message)
    assert "broken.png" in message and "trunc.jpg" in message
    assert out.shape[0] == 2
    assert out[0, 0].float().mean() > 240 and out[1, 2].float().mean() > 240


def test_limit_takes_the_first_good_images_in_sorted_order(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "lim"
    (root / "a_bad.png").parent.mkdir(parents=True)
    (root / "a_bad.png").write_bytes(b"junk")
    for i, color in enumerate([RED, GREEN, BLUE, (9, 9, 9)]):
        solid(root / f"b{i}.png", color)
    with pytest.warns(UserWarning, match="a_bad.png"):
        out = load(root, limit=2, cache=cache)
    assert out.shape[0] == 2
    assert out[0, 0, 0, 0] == 255 and out[1, 1, 0, 0] == 255


def test_empty_folder_missing_path_and_all_bad_raise(tmp_path: Path, cache: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"no image files in folder .*empty"):
        load(empty, cache=cache)
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nowhere", cache=cache)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"garbage")
    (bad / "y.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="none of the 2 image files"):
        load(bad, cache=cache)
    assert not (cache / "datasets").exists() or not list((cache / "datasets").iterdir())


def test_a_file_and_an_unknown_name_raise_helpful_errors(tmp_path: Path, cache: Path) -> None:
    f = solid(tmp_path / "one.png", RED)
    with pytest.raises(DataError, match="not a folder"):
        load(f, cache=cache)
    with pytest.raises(DataError, match=r"unknown dataset 'no-such-set'.*emoji.*fashion-mnist"):
        load("no-such-set", cache=cache)


@pytest.mark.parametrize(
    "typo, meant",
    [
        ("emojis", "emoji"),
        ("Emoji", "emoji"),
        ("fashion_mnist", "fashion-mnist"),
        ("textures:brik", "textures:brick"),
        ("texture:grass", "textures:grass"),
    ],
)
def test_a_near_miss_of_a_builtin_name_suggests_it(
    tmp_path: Path, cache: Path, typo: str, meant: str
) -> None:
    with pytest.raises(DataError, match=rf"did you mean '{meant}'\?") as info:
        load(typo, cache=cache)
    assert "textures:NAME" in str(info.value) or "choose one of" in str(info.value)
    with pytest.raises(DataError, match=rf"did you mean '{meant}'\?"):
        dataset_identity(typo, (8, 8))  # the cache key fails the same way, before decoding


def test_a_name_far_from_every_builtin_gets_no_suggestion(cache: Path) -> None:
    with pytest.raises(DataError) as info:
        load("my-holiday-photos", cache=cache)
    assert "did you mean" not in str(info.value)
    assert "unknown dataset 'my-holiday-photos'" in str(info.value)


def test_bad_arguments_raise_data_error(tmp_path: Path, cache: Path) -> None:
    solid(tmp_path / "d" / "a.png", RED)
    with pytest.raises(DataError, match="channels"):
        load(tmp_path / "d", channels=2, cache=cache)
    with pytest.raises(DataError, match="size"):
        load(tmp_path / "d", size=(0, 8), cache=cache)
    with pytest.raises(DataError, match="limit"):
        load(tmp_path / "d", limit=0, cache=cache)


# ------------------------------------------------------------------------------------ cache


def test_second_call_loads_the_cache_without_decoding(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "c"
    solid(root / "a.png", RED)
    solid(root / "b.png", GREEN)
    first = load(root, cache=cache)
    files = list((cache / "datasets").glob("*.pt"))
    assert len(files) == 1 and files[0].name.startswith("c-")

    decoded: list[Path] = []
    real_decode = folders.decode_image

    def counting_decode(path, *args, **kwargs):
        decoded.append(path)
        return real_decode(path, *args, **kwargs)

    monkeypatch.setattr(folders, "decode_image", counting_decode)
    second = load(root, cache=cache)
    assert torch.equal(first, second) and decoded == []

    # a changed folder is a different dataset: it is decoded again, into a second cache file
    solid(root / "c.png", BLUE)
    third = load(root, cache=cache)
    assert len(decoded) == 3 and torch.equal(third[:2], first)
    assert len(list((cache / "datasets").glob("*.pt"))) == 2


def test_identity_tracks_files_size_channels_and_limit(tmp_path: Path) -> None:
    root = tmp_path / "ident"
    img = solid(root / "a.png", RED)
    base = dataset_identity(str(root), (8, 8), 3, None)
    assert base == dataset_identity(str(root), (8, 8), 3, None)
    assert str(root.resolve()) in base and "8x8" in base
    others = {
        dataset_identity(str(root), (8, 16), 3, None),
        dataset_identity(str(root), (8, 8), 1, None),
        dataset_identity(str(root), (8, 8), 3, 5),
    }
    assert base not in others and len(others) == 3
    Image.new("RGB", (13, 10), RED).save(img)  # same name, new content
    assert dataset_identity(str(root), (8, 8), 3, None) != base


def test_grayscale_data_is_cached_once_and_replicated(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "g3"
    solid(root / "a.png", 77, mode="L")
    first = load(root, (4, 4), 3, cache=cache)
    (path,) = (cache / "datasets").glob("*.pt")
    stored = torch.load(path, weights_only=True)
    assert stored["gray_as_rgb"] and stored["images"].shape == (1, 1, 4, 4)
    again = load(root, (4, 4), 3, cache=cache)
    assert torch.equal(first, again) and again.shape == (1, 3, 4, 4) and again.is_contiguous()


def test_corrupt_cache_is_rebuilt(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "cc"
    solid(root / "a.png", RED)
    first = load(root, cache=cache)
    (path,) = (cache / "datasets").glob("*.pt")
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="rebuilding"):
        again = load(root, cache=cache)
    assert torch.equal(first, again)


def test_unwritable_cache_warns_and_still_returns_the_data(tmp_path: Path) -> None:
    solid(tmp_path / "w" / "a.png", RED)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not write the data cache"):
        out = load(tmp_path / "w", cache=blocker)
    assert out.shape == (1, 3, 8, 8)


def test_a_path_object_always_means_a_folder(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    solid(tmp_path / "emoji" / "a.png", GREEN)  # a folder that shadows the built-in name
    out = load_images(Path("emoji"), (4, 4), cache_dir=cache, progress=False)
    assert out.shape == (1, 3, 4, 4) and out[0, 1, 0, 0] == 255
    assert load("./emoji", (4, 4), cache=cache).shape == (1, 3, 4, 4)


def test_progress_messages_only_when_asked(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    solid(tmp_path / "p" / "a.png", RED)
    load_images(str(tmp_path / "p"), (4, 4), cache_dir=cache, progress=False)
    assert capsys.readouterr() == ("", "")
    load_images(str(tmp_path / "p"), (4, 4), cache_dir=cache, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "from cache" in captured.err


def test_default_cache_dir_honours_fwp_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "here"))
    assert D.default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("FWP_CACHE")
    assert D.default_cache_dir() == Path.home() / ".cache" / "fwp"


# ------------------------------------------------------------------------------------ built-ins


def test_emoji_loads_real_pngs_on_white(cache: Path) -> None:
    out = load("emoji", (32, 32), limit=12, cache=cache)
    assert out.shape == (12, 3, 32, 32) and out.dtype == torch.uint8
    corners = out[:, :, [0, 0, -1, -1], [0, -1, 0, -1]].float()
    assert corners.mean() > 240  # transparent corners became white
    assert out.float().std() > 30  # and there is a picture in the middle
    assert load("emoji", (16, 16), 1, limit=3, cache=cache).shape == (3, 1, 16, 16)


def test_emoji_ships_about_four_thousand_files() -> None:
    assets = datasets._emoji_dir()
    assert assets is not None
    assert len(list(assets.glob("*.png"))) > 3900


def test_textures_brick_is_deterministic_and_limit_is_a_prefix(tmp_path: Path) -> None:
    a = load("textures:brick", (24, 32), limit=40, cache=tmp_path / "a")
    assert a.shape == (40, 3, 24, 32) and a.dtype == torch.uint8
    assert torch.equal(a[:, 0], a[:, 1])  # a grey photo replicated to RGB
    assert a.float().std() > 10 and not torch.equal(a[0], a[1])  # different crops
    b = load("textures:brick", (24, 32), limit=10, cache=tmp_path / "b")
    assert torch.equal(a[:10], b)


def test_colour_texture_loads_in_gray_and_rgb(cache: Path) -> None:
    rgb = load("textures:coffee", (16, 16), limit=5, cache=cache)
    assert rgb.shape == (5, 3, 16, 16) and not torch.equal(rgb[:, 0], rgb[:, 2])
    assert load("textures:coffee", (16, 16), 1, limit=5, cache=cache).shape == (5, 1, 16, 16)


def test_every_listed_texture_loads_offline() -> None:
    import skimage.data

    for name in D.TEXTURE_NAMES:
        photo = getattr(skimage.data, name)()
        assert photo.dtype == np.uint8 and min(photo.shape[:2]) >= 100, name


def test_textures_without_a_name_lists_the_options(cache: Path) -> None:
    with pytest.raises(DataError, match=r"textures:brick.*textures:grass"):
        load("textures", cache=cache)
    with pytest.raises(DataError, match="has no photo 'nope'"):
        load("textures:nope", cache=cache)


def write_idx(path: Path, images: np.ndarray) -> None:
    n, rows, cols = images.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, n, rows, cols) + images.tobytes())


def test_fashion_mnist_reader_on_small_idx_files(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = np.zeros((3, 28, 28), dtype=np.uint8)
    train[:, 10:18, 10:18] = np.array([50, 100, 150], dtype=np.uint8)[:, None, None]
    test = np.full((2, 28, 28), 255, dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test)
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", [tmp_path / "absent", tmp_path])
    out = load("fashion-mnist", (56, 56), cache=cache)
    assert out.shape == (5, 3, 56, 56)  # train first, then test
    assert [int(v) for v in out[:3, 0, 28, 28]] == [50, 100, 150]
    assert (out[3:] == 255).all() and (out[:3, :, 0, 0] == 0).all()
    assert torch.equal(out[:, 0], out[:, 2])
    limited = load("fashion-mnist", (56, 56), 1, limit=4, cache=cache)
    assert limited.shape == (4, 1, 56, 56) and torch.equal(limited[:, 0], out[:4, 0])


def test_fashion_mnist_missing_says_how_to_install(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", [tmp_path / "nothing-here"])
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load("fashion-mnist", cache=cache)
    info = {i.name: i for i in D.list_datasets()}["fashion-mnist"]
    assert not info.available and "apt-get install dataset-fashion-mnist" in info.how_to_install


def test_fashion_mnist_hint_is_for_root_and_does_not_assume_sudo(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", [tmp_path / "nothing-here"])
    with pytest.raises(DataError) as info:
        load("fashion-mnist", cache=cache)
    hint = {i.name: i for i in D.list_datasets()}["fashion-mnist"].how_to_install
    for text in (str(info.value), hint):
        assert "as root" in text
        first = text.index("apt-get install dataset-fashion-mnist")
        assert "sudo" not in text[:first]  # the plain command comes first; sudo is the fallback
        assert "sudo apt-get install dataset-fashion-mnist" in text


def test_fashion_mnist_from_the_debian_package_if_installed(cache: Path) -> None:
    """Loads the real data where the apt package is installed, else checks the error says so."""
    if datasets._fashion_mnist_files() is None:
        with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
            load("fashion-mnist", cache=cache)
        return
    out = load("fashion-mnist", (32, 32), limit=50, cache=cache)
    assert out.shape == (50, 3, 32, 32) and out.dtype == torch.uint8
    assert (out[:, :, 0, 0] < 30).float().mean() > 0.8  # dark background
    assert out.float().mean() > 30  # clothes in the middle
    train, _ = datasets._fashion_mnist_files()
    assert datasets._read_idx_images(train, None).shape == (60000, 28, 28)


def test_list_datasets() -> None:
    infos = D.list_datasets()
    names = [i.name for i in infos]
    assert names[0] == "emoji" and "fashion-mnist" in names and "textures:brick" in names
    by_name = {i.name: i for i in infos}
    assert by_name["emoji"].available and by_name["textures:brick"].available
    assert all(i.description and i.how_to_install for i in infos)


# ------------------------------------------------------------------------------------ conversion


def test_to_float_and_to_uint8_round_trip() -> None:
    every = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    f = to_float(every)
    assert f.dtype == torch.float32 and f.shape == every.shape
    assert f.min() == -1.0 and f.max() == 1.0
    assert torch.equal(to_uint8(f), every)
    assert torch.equal(to_uint8(torch.tensor([-3.0, 0.0, 7.0])), torch.tensor([0, 128, 255]).byte())
    with pytest.raises(DataError, match="uint8"):
        to_float(f)
    with pytest.raises(DataError, match="floating"):
        to_uint8(every)


# ------------------------------------------------------------------------------------ DataStream


def labelled(n: int, c: int = 1, h: int = 2, w: int = 2) -> torch.Tensor:
    """n images whose pixels all equal their index: a batch tells which images it holds."""
    return torch.arange(n, dtype=torch.uint8).reshape(n, 1, 1, 1).expand(n, c, h, w).contiguous()


def ids(batch: torch.Tensor) -> list[int]:
    return to_uint8(batch)[:, 0, 0, 0].tolist()


def take(stream: DataStream, batches: int) -> list[int]:
    """The image indices of the next ``batches`` batches, in order."""
    return ids(torch.cat([stream.next_batch() for _ in range(batches)]))


def test_stream_batches_are_float_in_range() -> None:
    stream = DataStream(labelled(10, c=3) * 20, batch_size=4, seed=0)
    batch = stream.next_batch()
    assert batch.shape == (4, 3, 2, 2) and batch.dtype == torch.float32
    assert batch.min() >= -1 and batch.max() <= 1 and batch.device.type == "cpu"


def test_stream_is_deterministic_and_seed_dependent() -> None:
    images = labelled(50)
    a, b = DataStream(images, 7, seed=3), DataStream(images, 7, seed=3)
    c = DataStream(images, 7, seed=4)
    seq_a = [ids(a.next_batch()) for _ in range(20)]
    assert seq_a == [ids(b.next_batch()) for _ in range(20)]
    assert seq_a != [ids(c.next_batch()) for _ in range(20)]


def test_each_epoch_is_a_new_permutation() -> None:
    stream = DataStream(labelled(20), batch_size=5, seed=0)
    epoch0 = take(stream, 4)
    assert stream.state_dict()["epoch"] == 1 and stream.state_dict()["position"] == 0
    epoch1 = take(stream, 4)
    assert sorted(epoch0) == list(range(20)) == sorted(epoch1)
    assert epoch0 != epoch1 and epoch0 != list(range(20))


def test_batches_run_across_epoch_ends_and_may_exceed_the_dataset() -> None:
    stream = DataStream(labelled(7), batch_size=3, seed=1)
    seen = take(stream, 7)  # 21 = 3 epochs exactly
    for e in range(3):
        assert sorted(seen[7 * e : 7 * e + 7]) == list(range(7))
    big = DataStream(labelled(4), batch_size=10, seed=0)
    assert sorted(ids(big.next_batch())[:8]) == sorted(list(range(4)) * 2)


def test_resume_mid_epoch_continues_the_exact_order() -> None:
    images = labelled(23)
    a = DataStream(images, batch_size=4, seed=11)
    for _ in range(8):  # 32 images: into the second epoch, mid-epoch
        a.next_batch()
    state = a.state_dict()
    assert set(state) >= {"epoch", "position", "seed"} and 0 < state["position"] < 23
    b = DataStream(images, batch_size=4, seed=999)  # the seed comes from the state
    b.load_state_dict(dict(state))
    for _ in range(10):
        assert torch.equal(a.next_batch(), b.next_batch())


def test_resume_rejects_another_dataset() -> None:
    state = DataStream(labelled(10), 2, seed=0).state_dict()
    with pytest.raises(DataError, match="10 images"):
        DataStream(labelled(12), 2, seed=0).load_state_dict(state)
    with pytest.raises(DataError, match="lacks"):
        DataStream(labelled(10), 2, seed=0).load_state_dict({"epoch": 1})


def test_ranks_get_disjoint_equal_shares_of_each_epoch() -> None:
    images, world = labelled(31), 3
    streams = [DataStream(images, 5, seed=2, rank=r, world_size=world) for r in range(world)]
    for _epoch in range(2):
        shares = [take(s, 2) for s in streams]  # 10 each
        flat = [i for share in shares for i in share]
        assert all(len(share) == 10 for share in shares)
        assert len(set(flat)) == 30  # disjoint; one image of 31 sits out this epoch
        assert all(s.state_dict()["position"] == 0 for s in streams)
    whole = DataStream(images, 5, seed=2).epoch_order(0)
    assert sorted(torch.cat([s.epoch_order(0) for s in streams]).tolist()) == sorted(
        whole[:30].tolist()
    )


def test_world_size_change_on_resume_warns_and_restarts_the_epoch() -> None:
    state = DataStream(labelled(10), 3, seed=0, world_size=2).state_dict()
    state["position"] = 2
    stream = DataStream(labelled(10), 3, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream.load_state_dict(state)
    assert any("world_size" in str(w.message) for w in caught)
    assert stream.state_dict()["position"] == 0


def test_stream_argument_errors() -> None:
    with pytest.raises(DataError, match="uint8"):
        DataStream(torch.zeros(4, 1, 2, 2), 2, seed=0)
    with pytest.raises(DataError, match="batch_size"):
        DataStream(labelled(4), 0, seed=0)
    with pytest.raises(DataError, match="rank"):
        DataStream(labelled(4), 2, seed=0, rank=2, world_size=2)
    with pytest.raises(DataError, match="cannot be split"):
        DataStream(labelled(2), 2, seed=0, world_size=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_stream_on_cuda_keeps_uint8_on_the_device() -> None:
    stream = DataStream(labelled(16), 4, seed=0, device="cuda")
    assert stream.images.is_cuda and stream.images.dtype == torch.uint8
    assert stream.next_batch().is_cuda
