"""rt.imwrite / rt.imread: missing folders, [H, W] images, gamma=, and Radiance .hdr files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import raytrace as rt
from raytrace.io.images import _encode_hdr


def hdr_flat(img: np.ndarray, resolution: str = None) -> bytes:
    """A Radiance HDR file with flat (not run-length encoded) scanlines, written out here
    independently of raytrace's writer: (m + 0.5) 2^(e - 136) decodes within half a step."""
    h, w = img.shape[:2]
    peak = img.max(axis=2)
    e = np.where(peak > 0, np.floor(np.log2(np.maximum(peak, 1e-38))) + 1, 0).astype(np.int64)
    m = np.where(peak[..., None] > 0, np.floor(img / np.exp2(e - 8)[..., None]), 0)
    rgbe = np.concatenate([m, np.where(peak > 0, e + 128, 0)[..., None]], axis=2).astype(np.uint8)
    res = resolution or f"-Y {h} +X {w}"
    return b"#?RADIANCE\n# made by a test\nFORMAT=32-bit_rle_rgbe\nEXPOSURE=2.0\n\n" + \
        res.encode() + b"\n" + rgbe.tobytes()


def test_imwrite_creates_missing_folders_and_takes_grey_2d_images(tmp_path):
    out = tmp_path / "a" / "b" / "grey.png"
    rt.imwrite(torch.full((3, 5), 0.5), out)
    back = rt.imread(out)
    assert back.shape == (3, 5, 1) and (back - 0.5).abs().max() < 0.005
    # A file where a folder should be: a ValueError naming the path, nothing written.
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cannot create its folder"):
        rt.imwrite(torch.zeros(2, 2, 3), tmp_path / "file" / "x.png")


def test_gamma_encodes_a_power_curve_and_imread_inverts_it(tmp_path):
    from PIL import Image

    values = torch.tensor([0.0, 0.01, 0.2, 0.5, 1.0, 2.0]).reshape(1, -1, 1).repeat(1, 1, 3)
    rt.imwrite(values, tmp_path / "g.png", gamma=2.2)
    with Image.open(tmp_path / "g.png") as im:
        stored = np.asarray(im)[0, :, 0] / 255.0
    expected = np.clip(values[0, :, 0].numpy(), 0, 1) ** (1 / 2.2)
    assert np.abs(stored - expected).max() <= 0.5 / 255 + 1e-9
    back = rt.imread(tmp_path / "g.png", gamma=2.2)
    assert np.allclose(back[0, :, 0].numpy(), stored ** 2.2, atol=1e-6)
    rt.imwrite(values, tmp_path / "lin.png", gamma=1)  # gamma 1: linear, like srgb=False
    rt.imwrite(values, tmp_path / "lin2.png", srgb=False)
    assert (tmp_path / "lin.png").read_bytes() == (tmp_path / "lin2.png").read_bytes()


@pytest.mark.parametrize("gamma, error, message", [
    (0.0, ValueError, "gamma must be a finite number > 0"),
    (float("nan"), ValueError, "gamma must be a finite number > 0"),
    ("2.2", TypeError, "gamma must be None or a number"),
    (True, TypeError, "gamma must be None or a number"),
])
def test_gamma_errors_name_it(tmp_path, gamma, error, message):
    with pytest.raises(error, match=message):
        rt.imwrite(torch.zeros(2, 2, 3), tmp_path / "a.png", gamma=gamma)
    with pytest.raises(ValueError, match="either srgb=False .* or gamma="):
        rt.imwrite(torch.zeros(2, 2, 3), tmp_path / "a.png", gamma=2.2, srgb=False)
    assert not (tmp_path / "a.png").exists()


def test_hdr_round_trip_within_rgbe_precision(tmp_path):
    g = np.random.default_rng(0)
    img = (g.random((9, 40, 3)) ** 4 * 1000).astype(np.float32)
    img[2, 5:30] = [3.0, 2.0, 1.0]  # long runs: run-length encoded
    img[0, 0] = 0.0
    img[0, 1] = [1e-30, 0, 0]
    rt.imwrite(img, tmp_path / "sub" / "a.hdr")
    back = rt.imread(tmp_path / "sub" / "a.hdr").numpy()
    assert back.shape == img.shape and back.dtype == np.float32
    peak = img.max(axis=2, keepdims=True)
    assert (np.abs(back - img) <= peak / 256 + 1e-38).all()  # one step of the shared exponent
    assert (back[0, 0] == 0).all()
    # Grey [H, W] is written as RGB.
    rt.imwrite(torch.full((2, 9), 0.25), tmp_path / "grey.hdr")
    assert np.allclose(rt.imread(tmp_path / "grey.hdr").numpy(), 0.25, rtol=1 / 256)


def test_hdr_reads_flat_scanlines_and_every_orientation(tmp_path):
    g = np.random.default_rng(1)
    img = (g.random((3, 5, 3)) * 8).astype(np.float32)
    path = tmp_path / "flat.hdr"
    path.write_bytes(hdr_flat(img))  # width 5 < 8: never run-length encoded
    back = rt.imread(path).numpy()
    assert np.abs(back - img).max() <= img.max() / 128  # EXPOSURE is ignored
    # The same pixels stored in the other orders: the image read back is the same.
    orders = {"+Y 3 +X 5": img[::-1], "-Y 3 -X 5": img[:, ::-1], "+Y 3 -X 5": img[::-1, ::-1],
              "+X 5 -Y 3": img.transpose(1, 0, 2), "-X 5 +Y 3": img[::-1, ::-1].transpose(1, 0, 2)}
    for res, stored in orders.items():
        path.write_bytes(hdr_flat(np.ascontiguousarray(stored), res))
        assert np.array_equal(rt.imread(path).numpy(), back), res


def test_hdr_run_length_scanlines_decode_like_flat_ones(tmp_path):
    img = np.zeros((4, 300, 3), np.float32)
    img[:, :100] = [1.0, 0.5, 0.25]
    img[:, 100:] = np.random.default_rng(2).random((4, 200, 3))
    data = _encode_hdr(img)
    assert len(data) < img.size * 4 * 4 // 3  # the runs are shorter than the flat pixels
    (tmp_path / "rle.hdr").write_bytes(data)
    (tmp_path / "flat.hdr").write_bytes(hdr_flat(img))
    assert np.allclose(rt.imread(tmp_path / "rle.hdr"), rt.imread(tmp_path / "flat.hdr"),
                       rtol=1 / 128, atol=0)


@pytest.mark.parametrize("data, message", [
    (b"P6\n", "does not start with .#.RADIANCE."),
    (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n-Y 2 +X 2\n", "no empty line ending the header"),
    (b"#?RADIANCE\nFORMAT=32-bit_rle_xyze\n\n-Y 1 +X 1\n\0\0\0\0", "XYZE is not"),
    (b"#?RADIANCE\n\n-Y 2 +Y 2\n", "bad resolution line"),
    (b"#?RADIANCE\n\nY 2 X 2\n", "bad resolution line"),
    (b"#?RADIANCE\n\n-Y 2 +X 2\n" + b"\1" * 15, "truncated"),
    (b"#?RADIANCE\n\n-Y 1 +X 8\n\2\2\0\x09", "width 9 differs"),
    (b"#?RADIANCE\n\n-Y 1 +X 8\n\2\2\0\x08\xff\1", "passes the end"),
    (b"#?RADIANCE\n\n-Y 1 +X 8\n\2\2\0\x08\x88\1", "ends early"),
])
def test_hdr_errors_name_the_file(tmp_path, data, message):
    path = tmp_path / "bad.hdr"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=rf"bad\.hdr.*{message}"):
        rt.imread(path)


def test_hdr_size_is_checked_from_the_header(tmp_path):
    path = tmp_path / "huge.hdr"
    path.write_bytes(b"#?RADIANCE\n\n-Y 100000 +X 100000\n\2\2\0\0")
    with pytest.raises(ValueError, match="max_image_pixels"):
        rt.imread(path)
    with pytest.raises(ValueError, match="max_image_pixels"):
        rt.imread(tmp_path / "huge.hdr", limits=rt.io.Limits(max_image_pixels=10))


def test_hdr_refuses_alpha_and_negative_values(tmp_path):
    with pytest.raises(ValueError, match="alpha channel"):
        rt.imwrite(torch.zeros(2, 2, 4), tmp_path / "a.hdr")
    with pytest.raises(ValueError, match="negative values"):
        rt.imwrite(-torch.ones(2, 2, 3), tmp_path / "a.hdr")
    assert not (tmp_path / "a.hdr").exists()
