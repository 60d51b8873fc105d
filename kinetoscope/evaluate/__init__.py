"""Evaluation: the analyzer that reads frames back into facts (DESIGN.md §4), and its agreement with the world."""

from kinetoscope.evaluate.analyzer import Analysis, CameraEstimate, ObjectTrack, analyze
from kinetoscope.evaluate.colors import dominant_colors, name_color

__all__ = ["Analysis", "CameraEstimate", "ObjectTrack", "analyze", "dominant_colors", "name_color"]
