"""Draw the brand icons: a speech bubble with sound waves, on a transparent background.

Writes custom_components/realtime_voice/brand/icon.png (256x256) and icon@2x.png (512x512), the
names Home Assistant's brands proxy (2026.3+) and hacs/action read from a custom integration.
Run it again after changing the drawing: python scripts/make_brand_icon.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

BRAND_DIR = Path(__file__).resolve().parent.parent / "custom_components/realtime_voice/brand"
BUBBLE = (3, 169, 244, 255)  # Home Assistant's blue
WAVE = (255, 255, 255, 255)
SUPERSAMPLE = 4  # draw large, then shrink: smooth edges without an anti-aliasing renderer
# Bar heights of the sound wave, as fractions of the bubble's inner height.
WAVE_HEIGHTS = (0.28, 0.55, 0.85, 0.55, 0.28)


def draw_icon(size: int) -> Image.Image:
    """Return the icon as a square RGBA image of the given size."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    unit = big / 256  # the drawing is laid out on a 256 grid

    # The bubble fills the canvas (brand images are trimmed), with a tail at the bottom left.
    top, bottom, left, right = 8 * unit, 200 * unit, 4 * unit, 252 * unit
    draw.rounded_rectangle((left, top, right, bottom), radius=56 * unit, fill=BUBBLE)
    draw.polygon(
        [(52 * unit, 180 * unit), (112 * unit, 190 * unit), (36 * unit, 252 * unit)], fill=BUBBLE
    )

    # The sound wave: rounded bars centred in the bubble.
    bar_width, gap = 22 * unit, 16 * unit
    total = len(WAVE_HEIGHTS) * bar_width + (len(WAVE_HEIGHTS) - 1) * gap
    x = (left + right - total) / 2
    middle = (top + bottom) / 2
    inner = bottom - top - 40 * unit
    for fraction in WAVE_HEIGHTS:
        half = inner * fraction / 2
        draw.rounded_rectangle(
            (x, middle - half, x + bar_width, middle + half), radius=bar_width / 2, fill=WAVE
        )
        x += bar_width + gap
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    """Write both icon sizes."""
    BRAND_DIR.mkdir(parents=True, exist_ok=True)
    for name, size in (("icon.png", 256), ("icon@2x.png", 512)):
        draw_icon(size).save(BRAND_DIR / name, optimize=True)
        print(f"wrote {BRAND_DIR / name}")


if __name__ == "__main__":
    main()
