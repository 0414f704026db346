"""Warning classes of sodinn: the only custom types users need to catch or filter."""

__all__ = ["SodinnWarning", "GeometryWarning", "PSFWarning"]


class SodinnWarning(UserWarning):
    """Base class of the warnings sodinn emits for recoverable oddities."""


class GeometryWarning(SodinnWarning):
    """A geometric request was adjusted (e.g. an annulus clipped to the frame)."""


class PSFWarning(SodinnWarning):
    """The off-axis PSF was changed on input: recentred on its stamp, or averaged from a cube of stamps."""
