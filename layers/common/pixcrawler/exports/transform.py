"""Resizing and re-encoding an export's images: stored bytes in, the bytes the archive holds out.

The resize modes mean exactly what img2dataset's do (its `Resizer`), so its users get the sizes they expect:
`keep_ratio` scales the shorter side to `image_size`, `keep_ratio_largest` the longer side, `center_crop`
scales like `keep_ratio` then keeps the centred `image_size` square, `border` scales like `keep_ratio_largest`
then pads to the square with white. Each side becomes `max(1, round(side * scale))`. With
`resize_only_if_bigger`, an image whose reference side (the shorter for keep_ratio and center_crop, the longer
for keep_ratio_largest and border) is not larger than `image_size` is left at its size, uncropped and unpadded.

Where we differ from img2dataset, on purpose: EXIF orientation is applied before anything else (img2dataset
ignores it, so phone photos come out lying on their side), and every output decodes as 8-bit RGB: transparency
is composited on white (img2dataset's matting), palette, greyscale and CMYK are converted, and 16-bit
greyscale keeps its high byte (value / 256).

Speed and quality: a JPEG is decoded with `draft()` at the deepest DCT scale (1/2, 1/4, 1/8) that still covers
the size the resize produces, as libvips's shrink-on-load does; the resize itself is Pillow's `resize` with
`reducing_gap=2.0` (a fast integer `reduce()` first while the image is more than twice the target) and the
filters img2dataset uses by default: area averaging (Pillow's BOX, OpenCV's INTER_AREA) when shrinking,
Lanczos when enlarging. Output is deterministic for a given Pillow build (no timestamps, no threads inside an
encoder), which the byte-exact resume of a long export relies on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from pixcrawler.schemas.export import EncodeFormat, ExportOptions, ResizeMode
from pixcrawler.validation.rules import DECODE_ERRORS, FORMAT_ALIASES, exif_orientation

WHITE = (255, 255, 255)
REDUCING_GAP = 2.0
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_SHORTER_SIDE = frozenset({ResizeMode.KEEP_RATIO, ResizeMode.CENTER_CROP})
_SIXTEEN_BIT = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_SWAPS_AXES = frozenset({5, 6, 7, 8})


class TransformError(Exception):
    """The stored bytes do not decode (or are too large to): the message says why, in plain words."""


@dataclass(frozen=True, slots=True)
class Transformed:
    """An output image: its bytes, its pixel size and its format (`jpeg`, `png` or `webp`)."""

    data: bytes
    width: int
    height: int
    format: str


@dataclass(frozen=True, slots=True)
class Transform:
    """One export's transform; call it with an image's stored bytes (from any thread: it holds no state)."""

    image_size: int
    resize_mode: ResizeMode
    resize_only_if_bigger: bool
    encode_format: EncodeFormat
    encode_quality: int
    max_pixels: int

    @classmethod
    def of(cls, options: ExportOptions, max_pixels: int) -> Transform | None:
        """The export's transform; None when it asks for none and the stored bytes go out untouched."""
        if not options.transforms:
            return None
        return cls(
            image_size=options.image_size or 0,
            resize_mode=options.resize_mode,
            resize_only_if_bigger=options.resize_only_if_bigger,
            encode_format=options.encode_format,
            encode_quality=options.encode_quality,
            max_pixels=max_pixels,
        )

    def scaled_size(self, width: int, height: int) -> tuple[int, int] | None:
        """The size the resize step produces (before a crop or a border) for an upright image of this size;
        None when the image keeps its size."""
        if self.resize_mode is ResizeMode.NO:
            return None
        reference = min(width, height) if self.resize_mode in _SHORTER_SIDE else max(width, height)
        if self.resize_only_if_bigger and reference <= self.image_size:
            return None
        scale = self.image_size / reference
        return max(1, round(width * scale)), max(1, round(height * scale))

    def output_format(self, stored: str) -> str:
        """`original` keeps JPEG, PNG and WebP; any other stored format (GIF, BMP, TIFF, ...) becomes PNG, which
        loses nothing."""
        if self.encode_format is not EncodeFormat.ORIGINAL:
            return self.encode_format.value
        return stored if stored in EXTENSIONS else "png"

    def __call__(self, data: bytes) -> Transformed:
        Image.MAX_IMAGE_PIXELS = self.max_pixels  # set alike by every caller; see validation.rules.examine
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > self.max_pixels:
                    raise TransformError(f"{image.width}x{image.height} pixels exceeds the limit of {self.max_pixels}")
                return self._apply(image, data)
        except Image.DecompressionBombError as error:
            raise TransformError(str(error)) from error
        except DECODE_ERRORS as error:
            raise TransformError(f"the image does not decode: {error}") from error

    def _apply(self, image: Image.Image, data: bytes) -> Transformed:
        stored = FORMAT_ALIASES.get(image.format or "", (image.format or "").lower())
        target = self.output_format(stored)
        orientation = exif_orientation(image) or 1  # absent or unreadable: as a viewer shows it
        stored_size = image.size
        upright = stored_size[::-1] if orientation in _SWAPS_AXES else stored_size
        scaled = self.scaled_size(*upright)
        if scaled is None and target == stored and image.mode == "RGB" and orientation == 1:
            image.load()  # it must decode, as every output does; re-encoding it would only lose quality
            return Transformed(data, image.width, image.height, target)
        if scaled is not None and stored == "jpeg":
            image.draft(None, scaled[::-1] if orientation in _SWAPS_AXES else scaled)
        image.load()
        picture = _rgb(ImageOps.exif_transpose(image) if orientation != 1 else image)
        if scaled is not None:
            downscale = scaled[0] < upright[0]
            resample = Image.Resampling.BOX if downscale else Image.Resampling.LANCZOS
            picture = picture.resize(scaled, resample, reducing_gap=REDUCING_GAP if downscale else None)
            picture = self._frame(picture)
        return Transformed(self._encode(picture, target), picture.width, picture.height, target)

    def _frame(self, picture: Image.Image) -> Image.Image:
        """center_crop keeps the centred square, border pads to it; offsets round down as img2dataset's do."""
        size, (width, height) = self.image_size, picture.size
        if self.resize_mode is ResizeMode.CENTER_CROP:
            left, top = (width - size) // 2, (height - size) // 2
            return picture.crop((left, top, left + size, top + size))
        if self.resize_mode is ResizeMode.BORDER and (width < size or height < size):
            square = Image.new("RGB", (max(width, size), max(height, size)), WHITE)
            square.paste(picture, ((square.width - width) // 2, (square.height - height) // 2))
            return square
        return picture

    def _encode(self, picture: Image.Image, fmt: str) -> bytes:
        out = io.BytesIO()
        if fmt == "png":
            picture.save(out, "PNG")
        else:
            picture.save(out, _PILLOW_FORMATS[fmt], quality=self.encode_quality)
        return out.getvalue()


def _rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: transparency composited on white, 16-bit greyscale scaled to its high byte, any other mode
    (palette, greyscale, CMYK, YCbCr, LAB) converted by Pillow."""
    if image.mode in _SIXTEEN_BIT:
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode == "RGB":
        return image
    if "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
