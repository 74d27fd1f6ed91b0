"""Captions uploaded by a video's owner (WebVTT, one per language) and the chapters read
from a video's description. Extracted subtitle tracks come from the processor's
events; this domain adds the owner's own and serves both."""
