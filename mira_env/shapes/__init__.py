"""The shapes world: an embedded editing world with exact ground truth.

A scene graph (:mod:`.scene`) rendered with numpy (:mod:`.render`), an atomic-instruction grammar
(operations in :mod:`.ops`, parsed by :mod:`.grammar`, phrased by :mod:`.phrasing`, applied by :mod:`.execute`,
referring expressions chosen by :mod:`.refer`, objects matched by :mod:`.matching`), a batched editor with seeded diffusion-like noise
(:mod:`.editor`, :mod:`.noise`), a reproducible task generator (:mod:`.generator`), the oracle
reward (:mod:`.oracle`), the oracle planner (:mod:`.planner`) and the environment factory
(:mod:`.env`, registered as ``mira/Shapes-v0``); :mod:`.export` writes tasks with their oracle trajectories
as MIRA-Editing records.
"""

from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.env import make_shapes_env
from mira_env.shapes.generator import ShapesTaskConfig, ShapesTaskGenerator, split_of
from mira_env.shapes.grammar import Op, ParseError, Ref, parse_instruction
from mira_env.shapes.noise import EditorNoise
from mira_env.shapes.oracle import ShapesOracleReward, oracle_score
from mira_env.shapes.planner import next_edit, plan
from mira_env.shapes.render import render_array, render_image
from mira_env.shapes.scene import Obj, Scene, SceneError

__all__ = ["EditorNoise", "Obj", "Op", "ParseError", "Ref", "Scene", "SceneError", "ShapesEditor",
           "ShapesOracleReward", "ShapesTaskConfig", "ShapesTaskGenerator", "make_shapes_env", "next_edit",
           "oracle_score", "parse_instruction", "plan", "render_array", "render_image", "split_of"]
