"""The synthetic dataset (`action-rec synth`): takes a seed; hands on mp4 clips of a person walking, running,
falling or doing `other` things, in out_dir/{train,val,test}/<class>/.

dataset writes the clips (a seed stream per split and class), render turns a seed into frames (plan, effects,
shadow, occluders), camera places the person and the camera, scene draws the background, body/motion/figure are the
jointed figure (proportions, gaits, drawing), actions and props the `other` class.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".render": "ALL_CLASSES CLASSES ClipPlan FPS_CHOICES SIZES SPLITS plan_clip render_clip write_clip",
    ".dataset": "check_classes clip_seed synthesize",
    ".camera": "ATTEMPTS GONE_LEAVE MARGIN MIN_STATIC_S OTHER_SIZE SIZE_NEVER SIZE_RANGE STATIC_HEADING TAU "
               "VIS_LEAVE VIS_STATIC ZOOM_STATIC",
    ".scene": "PHOTO_REGIONS",
    ".body": "P",
    ".figure": "draw_body",
})
