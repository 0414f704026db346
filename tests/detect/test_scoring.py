"""Blob scoring (the data challenge's rule), checked by hand and against vip-hci's compute_binary_map."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

from sodinn.detect.scoring import disc_mask, score_blobs, score_thresholds


def _blob_map(size=41):
    frame = np.zeros((size, size))
    frame[disc_mask(frame.shape, 10, 12, 2.0)] = 5.0  # a companion-sized blob at (10, 12)
    frame[30, 30] = frame[30, 31] = 4.0  # a 2-px blob: a false positive
    frame[5, 35] = 9.0  # a single pixel: below npix=2
    return frame


def test_true_and_false_positives_by_hand():
    frame = _blob_map()
    s = score_blobs(frame, 1.0, [(10.5, 12.0)], 4.0)
    assert s.true_blobs == 1 and s.detected.tolist() == [True]
    assert s.false_positives == 1.0
    # npix=1 keeps the single pixel: one more false positive
    assert score_blobs(frame, 1.0, [(10.5, 12.0)], 4.0, npix=1).false_positives == 2.0
    # a threshold above the false positive's value leaves the companion only
    s = score_blobs(frame, 4.5, [(10.5, 12.0)], 4.0)
    assert (s.true_blobs, s.false_positives) == (1, 0.0)
    # an injection elsewhere: the companion blob becomes a false positive and the injection is missed
    s = score_blobs(frame, 1.0, [(30.0, 10.0)], 4.0)
    assert s.true_blobs == 0 and s.false_positives == 2.0 and not s.detected[0]
    # the threshold is strict, as in photutils: a map equal to the threshold detects nothing
    assert score_blobs(frame, 5.0, [(10.5, 12.0)], 4.0).true_blobs == 0


def test_large_blob_counts_its_area_in_resolution_elements():
    frame = np.zeros((61, 61))
    frame[10:30, 10:30] = 1.0  # 400 px, more than 2 discs of radius 3 (~29 px each)
    element = disc_mask(frame.shape, 30, 30, 3.0).sum()
    s = score_blobs(frame, 0.5, [(20.0, 20.0)], 3.0)
    assert s.true_blobs == 0 and not s.detected[0]
    assert s.false_positives == pytest.approx(400 / element)


def test_known_sources_and_region():
    frame = _blob_map()
    s = score_blobs(frame, 1.0, [], 4.0, known_sources_xy=[(30.5, 30.0)])
    assert (s.false_positives, s.ignored_blobs) == (1.0, 1)  # only the companion-sized blob is left, unmatched
    region = np.zeros(frame.shape, dtype=bool)
    region[:20] = True
    assert score_blobs(frame, 1.0, [], 4.0, region=region).false_positives == 1.0
    with pytest.raises(ValueError, match="region must have the frame's shape"):
        score_blobs(frame, 1.0, [], 4.0, region=region[:5])
    with pytest.raises(ValueError, match="injections_xy"):
        score_blobs(frame, 1.0, [(1.0, 2.0, 3.0)], 4.0)


def _random_maps(rng, n=6, size=61):
    for _ in range(n):
        frame = ndimage.gaussian_filter(rng.normal(size=(size, size)), 1.5)
        frame /= frame.std()
        injections = rng.uniform(8, size - 8, size=(int(rng.integers(1, 4)), 2))
        for x, y in injections:  # bright spots at the injections, some too faint to pass
            frame += rng.uniform(0, 6) * np.exp(-((np.arange(size)[None, :] - x) ** 2 + (np.arange(size)[:, None] - y) ** 2) / 8)
        yield frame, injections


@pytest.mark.vip
def test_matches_vip_compute_binary_map(vip, naco):
    """Same maps and thresholds: the same detections and (rounded) false positives as vip-hci."""
    from photutils.utils.exceptions import NoDetectionsWarning
    from vip_hci.metrics.roc import compute_binary_map

    from sodinn.adi.baselines import pca_annular
    from sodinn.adi.injection import cube_inject_companions
    from sodinn.adi.snr import snr_map

    rng = np.random.default_rng(3)
    cases = list(_random_maps(rng))
    psf = naco.psf_normalized
    cube = cube_inject_companions(naco.cube, psf, naco.angles_deg, sep_px=[9.0, 14.0], theta_deg=[30.0, 200.0], flux=[60.0, 25.0])
    smap = snr_map(pca_annular(cube, naco.angles_deg, naco.fwhm_px, ncomp=10), naco.fwhm_px)
    cy = cx = 50.0
    inj = np.array([[cx + 9 * np.cos(np.radians(30)), cy + 9 * np.sin(np.radians(30))],
                    [cx + 14 * np.cos(np.radians(200)), cy + 14 * np.sin(np.radians(200))]])
    cases.append((smap, inj))
    thresholds = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0]
    compared = 0
    for frame, injections in cases:
        for fwhm, npix in ((4.0, 2), (naco.fwhm_px, 1)):
            with warnings.catch_warnings():  # photutils warns at thresholds above every pixel
                warnings.simplefilter("ignore", NoDetectionsWarning)
                det, fps, _ = compute_binary_map(frame, thresholds, injections, fwhm, npix=npix, overlap_threshold=0.7,
                                                 max_blob_fact=2)
            ours = score_thresholds(frame, thresholds, injections, fwhm, npix=npix)
            assert [s.true_blobs for s in ours] == det
            assert [int(np.round(s.false_positives)) for s in ours] == fps
            compared += sum(d + f for d, f in zip(det, fps))
    assert compared > 50  # the comparison saw many blobs, not empty maps
