import pytest

from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.execute import EditFailure, apply_op, resolve
from mira_env.shapes.grammar import PHRASINGS, Op, ParseError, parse_instruction, parse_ref, phrase, phrasing_key
from mira_env.shapes.scene import Obj, Scene

#  top left: red circle (small) | top center: blue star (medium) | top right: -
#  middle left: red square (large) | center: green square (small) | middle right: blue triangle (medium)
#  bottom left: - | bottom center: red triangle (large) | bottom right: -
SCENE = Scene.make("white", [
    Obj("circle", "red", "small", 0, 0), Obj("star", "blue", "medium", 0, 1), Obj("square", "red", "large", 1, 0),
    Obj("square", "green", "small", 1, 1), Obj("triangle", "blue", "medium", 1, 2),
    Obj("triangle", "red", "large", 2, 1),
])


def run(text):
    (op,) = parse_instruction(text)
    return apply_op(op, SCENE)


def changed(after):
    return sorted(set(after.objects) ^ set(SCENE.objects))


@pytest.mark.parametrize("text, removed, added", [
    ("add a small red circle at the top right", [], [Obj("circle", "red", "small", 0, 2)]),
    ("Draw an orange hexagon in the bottom-left corner.", [], [Obj("hexagon", "orange", "medium", 2, 0)]),
    ("remove the red circle", [Obj("circle", "red", "small", 0, 0)], []),
    ("get rid of the star", [Obj("star", "blue", "medium", 0, 1)], []),
    ("make the red circle yellow", [Obj("circle", "red", "small", 0, 0)], [Obj("circle", "yellow", "small", 0, 0)]),
    ("change the colour of the star to pink", [Obj("star", "blue", "medium", 0, 1)], [Obj("star", "pink", "medium", 0, 1)]),
    ("move the star to the top right", [Obj("star", "blue", "medium", 0, 1)], [Obj("star", "blue", "medium", 0, 2)]),
    ("nudge the star right", [Obj("star", "blue", "medium", 0, 1)], [Obj("star", "blue", "medium", 0, 2)]),
    ("move the red triangle one step left", [Obj("triangle", "red", "large", 2, 1)], [Obj("triangle", "red", "large", 2, 0)]),
    ("resize the star to large", [Obj("star", "blue", "medium", 0, 1)], [Obj("star", "blue", "large", 0, 1)]),
    ("shrink the star", [Obj("star", "blue", "medium", 0, 1)], [Obj("star", "blue", "small", 0, 1)]),
    ("make the red circle bigger", [Obj("circle", "red", "small", 0, 0)], [Obj("circle", "red", "medium", 0, 0)]),
    ("replace the star with a diamond", [Obj("star", "blue", "medium", 0, 1)], [Obj("diamond", "blue", "medium", 0, 1)]),
    ("turn the red circle into a hexagon", [Obj("circle", "red", "small", 0, 0)], [Obj("hexagon", "red", "small", 0, 0)]),
])
def test_each_operation(text, removed, added):
    after = run(text)
    assert sorted(set(SCENE.objects) - set(after.objects)) == removed
    assert sorted(set(after.objects) - set(SCENE.objects)) == added
    assert after.background == "white"


def test_background():
    assert run("make the background navy").background == "navy"
    assert run("set the background color to gray").background == "gray"
    assert run("make the background navy").objects == SCENE.objects


@pytest.mark.parametrize("text, cell", [
    # attributes
    ("the red circle", (0, 0)), ("the large red square", (1, 0)), ("the green shape", (1, 1)),
    ("the star", (0, 1)),
    # location
    ("the square in the center", (1, 1)), ("the shape at the top left", (0, 0)),
    # spatial relations
    ("the triangle below the green square", (2, 1)),
    ("the shape above the red circle", None),
    ("the square to the right of the red square", (1, 1)), ("the star above the green square", (0, 1)),
    # superlatives
    ("the smallest square", (1, 1)), ("the largest triangle", (2, 1)), ("the rightmost shape", (1, 2)),
    ("the lowest shape", (2, 1)), ("the leftmost blue shape", (0, 1)),
])
def test_referring_expressions(text, cell):
    if cell is None:
        with pytest.raises(EditFailure) as info:
            resolve(parse_ref(text), SCENE)
        assert info.value.reason == "no_match"
        return
    assert resolve(parse_ref(text), SCENE).cell == cell


@pytest.mark.parametrize("text, reason, message", [
    ("the circle right of the star", "no_match", "no object matches 'the circle right of the star'"),
    ("the triangle", "ambiguous", "'the triangle' is ambiguous: 2 objects match it (at middle right, bottom center); "
                                  "add a colour, size, location or relation"),
    ("the red shape", "ambiguous", "'the red shape' is ambiguous: 3 objects match it (at top left, middle left, "
                                   "bottom center); add a colour, size, location or relation"),
    ("the largest shape", "ambiguous", "'the largest shape' is ambiguous: 2 objects tie for it (at middle left, "
                                       "bottom center); add a colour, size, location or relation"),
    ("the leftmost shape", "ambiguous", "'the leftmost shape' is ambiguous: 2 objects tie for it (at top left, "
                                        "middle left); add a colour, size, location or relation"),
    ("the yellow star", "no_match", "no object matches 'the yellow star'"),
    ("the circle below the star left of the square", None, None),
])
def test_resolution_failures(text, reason, message):
    if reason is None:
        with pytest.raises(ParseError, match="nested spatial relations are not supported"):
            parse_ref(text)
        return
    with pytest.raises(EditFailure) as info:
        resolve(parse_ref(text), SCENE)
    assert (info.value.reason, str(info.value)) == (reason, message)


@pytest.mark.parametrize("text, message", [
    ("", "empty instruction"),
    ("dance wildly", "no known operation in 'dance wildly'; start with add, remove, make, paint, move, resize, "
                     "replace or change the background"),
    ("make the red circle magenta", "unknown colour or size 'magenta'; colours are: red, orange, yellow, green, cyan, "
                                    "blue, purple, pink, brown; sizes are: small, medium, large, bigger, smaller"),
    ("paint the red circle magenta", "unknown colour 'magenta'; object colours are: red, orange, yellow, green, "
                                     "cyan, blue, purple, pink, brown"),
    ("make the background red", "unknown background colour 'red'; backgrounds are: white, black, gray, beige, "
                                "navy, olive"),
    ("replace the star with a blob", "unknown shape 'blob'; shapes are: circle, square, triangle, star, diamond, "
                                     "hexagon"),
    ("remove the red blob", "unknown shape 'blob' in 'the red blob'; shapes are: circle, square, triangle, star, "
                            "diamond, hexagon (or 'shape' / 'object')"),
    ("remove the shiny star", "unknown word 'shiny' in the referring expression 'the shiny star'"),
    ("remove a star", "cannot parse the referring expression 'a star': it must start with 'the'"),
    ("move it to the center", "cannot resolve the pronoun 'it': name the object (e.g. 'the red circle')"),
    ("move the star to the far corner", "unknown location 'far'; use one of: top left, top center, top right, "
                                        "middle left, center, middle right, bottom left, bottom center, bottom right"),
    ("add a star at the center", "no colour given in 'a star'; say which colour to add, e.g. 'a red star'"),
])
def test_parse_failures(text, message):
    with pytest.raises(ParseError) as info:
        parse_instruction(text)
    assert str(info.value) == message


@pytest.mark.parametrize("text, message", [
    ("add a red star at the center", "the center is occupied by the green square; remove or move it first"),
    ("move the red circle up", "the red circle in the top left cannot move up: it is at the edge of the grid"),
    ("move the star to the center", "the center is occupied by the green square; remove or move it first"),
    ("make the large red square bigger", "the red square is already large; it cannot get bigger"),
])
def test_blocked_edits(text, message):
    (op,) = parse_instruction(text)
    with pytest.raises(EditFailure) as info:
        apply_op(op, SCENE)
    assert (info.value.reason, str(info.value)) == ("blocked", message)


def _sample_op(key):
    ref = parse_ref("the blue star")
    return {
        "add": Op("add", shape="hexagon", color="orange", size="large", cell=(2, 2)),
        "remove": Op("remove", ref=ref), "recolor": Op("recolor", ref=ref, color="cyan"),
        "move": Op("move", ref=ref, cell=(0, 2)), "shift": Op("move", ref=ref, direction="right"),
        "resize": Op("resize", ref=ref, size="small"), "bigger": Op("resize", ref=ref, size="bigger"),
        "smaller": Op("resize", ref=ref, size="smaller"), "replace": Op("replace", ref=ref, shape="diamond"),
        "background": Op("background", color="olive"),
    }[key]


@pytest.mark.parametrize("key", sorted(PHRASINGS))
def test_every_generator_phrasing_parses_back(key):
    op = _sample_op(key)
    assert phrasing_key(op) == key
    texts = {phrase(op, variant=v) for v in range(len(PHRASINGS[key]))}
    assert len(texts) == len(PHRASINGS[key]) >= 2
    for text in texts:
        (parsed,) = parse_instruction(text)
        assert apply_op(parsed, SCENE) == apply_op(op, SCENE), text


def test_compound_instruction_runs_every_clause_in_order():
    ops = parse_instruction("Make the red circle blue, then move the blue circle to the top right; and remove the star")
    assert [op.kind for op in ops] == ["recolor", "move", "remove"]
    scene, status = ShapesEditor().execute(SCENE, "make the red circle blue and then move the blue circle to the top right")
    assert status["ok"] and status["op"] == "compound" and status["ops"] == ["recolor", "move"]
    assert scene.at(0, 2) == Obj("circle", "blue", "small", 0, 2)


def test_compound_with_one_bad_clause_changes_nothing():
    scene, status = ShapesEditor().execute(SCENE, "make the red circle blue and then move it to the top right")
    assert scene == SCENE
    assert (status["ok"], status["reason"]) == (False, "parse_error")
