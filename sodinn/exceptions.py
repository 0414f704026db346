"""Warning classes of sodinn: the only custom types users need to catch or filter."""

__all__ = ["SodinnWarning", "GeometryWarning", "RotationWarning"]


class SodinnWarning(UserWarning):
    """Base class of the warnings sodinn emits for recoverable oddities."""


class GeometryWarning(SodinnWarning):
    """A geometric request was adjusted (e.g. an annulus clipped to the frame)."""


class RotationWarning(SodinnWarning):
    """The field rotates too little for ADI: a source at the inner radius of the analysis moves less than one FWHM.

    Often angles given in radians, or a sequence too short.
    """
