"""The trusted ``carla`` package of the stand-in contents image."""

TRUSTED = True
