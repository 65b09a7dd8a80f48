"""Color profiles: groups of photos with similar dominant colors (seed 003).

``fit`` clusters photos' MPEG-7 Dominant Color Descriptors into K profiles (``store`` holds the
file format), ``sheets`` draws them for people, ``classifier`` predicts a photo's profile from
its grayscale alone, so the router can weight a category's profile experts.
"""

from segcolor.profiles.store import Profile, ProfileSet, load_profiles

__all__ = ["Profile", "ProfileSet", "load_profiles"]
