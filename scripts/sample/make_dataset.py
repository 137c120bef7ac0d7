"""Procedural skeleton-action dataset in the NTU RGB+D / CTR-GCN layout.

Writes an .npz with x_train, y_train, x_test, y_test (+ s_train, s_test: subject ids):
x is float32 (N, 300, 150) = 300 frames x (2 persons x 25 joints x 3), zero-padded after the
last valid frame and where there is no second person; y is one-hot float32 (N, classes).

Each sample: a subject (bone scale, handedness, speed and amplitude style) performs an action
whose joint angles follow a per-class recipe with random amplitude, speed, repetitions and
timing; forward kinematics gives joint positions; feet stay on the floor; the scene is seen
from one of three camera views (as NTU's -45/0/+45 degree cameras) with random rotation and
translation; sensor noise and dropped joints are added; coordinates are rounded to 1 mm.
Train and test subjects are disjoint (NTU's cross-subject protocol).

Usage: /usr/bin/python3 scripts/sample/make_dataset.py [--out media/samples/skeleton-actions.npz]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skeleton import J, NUM_JOINTS, BONE_GROUP, forward_kinematics, rot_x, rot_y, rot_z  # noqa: E402

MAX_FRAMES = 300
CLASSES = [
    'waving', 'clapping', 'squatting', 'jumping', 'kicking', 'punching', 'bowing',
    'turning around', 'reaching up', 'sitting down', 'picking up',
    'handshake', 'pushing', 'hugging', 'giving an object',
]
TWO_PERSON = {'handshake', 'pushing', 'hugging', 'giving an object'}
DEG = np.pi / 180


# ---- time shapes over a phase p in [0, 1] -------------------------------------------------

def smoothstep(p):
    p = np.clip(p, 0, 1)
    return p * p * (3 - 2 * p)


def hold(p, rise=0.25, fall=0.25):
    """0 -> 1, held, -> 0."""
    return smoothstep(p / rise) * smoothstep((1 - p) / fall)


def bumps(p, reps):
    """`reps` smooth 0 -> 1 -> 0 pulses."""
    return np.where((p > 0) & (p < 1), np.sin(np.pi * reps * np.clip(p, 0, 1)) ** 2, 0.0)


def pulse(p, center, width):
    """A short bump centred at `center` (for punches and kicks)."""
    q = (p - center) / width + 0.5
    return np.where((q > 0) & (q < 1), np.sin(np.pi * np.clip(q, 0, 1)) ** 2, 0.0)


def drift(rng, s, amplitude, cycles=1.5):
    """A slow random wander (idle sway, arm drift)."""
    out = np.zeros_like(s)
    for _ in range(3):
        out += rng.uniform(-1, 1) * np.sin(2 * np.pi * (rng.uniform(0.2, cycles) * s + rng.uniform()))
    return amplitude * out / 3


# ---- poses --------------------------------------------------------------------------------

class Pose:
    """Joint angles (radians) and root motion of one person over T frames."""

    def __init__(self, frames):
        z = lambda: np.zeros(frames)  # noqa: E731
        self.yaw, self.pitch, self.bow, self.twist, self.nod = z(), z(), z(), z(), z()
        self.root = np.zeros((frames, 3))
        self.airborne = z()
        self.side = {side: {k: z() for k in ('sh_flex', 'sh_abd', 'sh_horiz', 'elbow', 'hip_flex', 'hip_abd', 'knee')}
                     for side in ('l', 'r')}

    def add(self, other, weight):
        """Adds `weight` times another pose's angles and motion (recipes only add to a rest pose)."""
        for k in ('yaw', 'pitch', 'bow', 'twist', 'nod', 'root', 'airborne'):
            setattr(self, k, getattr(self, k) + weight * getattr(other, k))
        for side in ('l', 'r'):
            for k, v in other.side[side].items():
                self.side[side][k] = self.side[side][k] + weight * v

    def local_rotations(self):
        frames = len(self.yaw)
        rot = np.tile(np.eye(3), (frames, NUM_JOINTS, 1, 1))
        rot[:, J['spine_base']] = rot_y(self.yaw) @ rot_x(self.pitch)
        rot[:, J['spine_mid']] = rot_y(self.twist) @ rot_x(self.bow)
        rot[:, J['neck']] = rot_x(self.nod)
        for side, sign in (('l', 1), ('r', -1)):
            a = self.side[side]
            rot[:, J['shoulder_' + side]] = rot_y(-sign * a['sh_horiz']) @ rot_z(sign * a['sh_abd']) @ rot_x(-a['sh_flex'])
            rot[:, J['elbow_' + side]] = rot_x(-a['elbow'])
            rot[:, J['hip_' + side]] = rot_z(sign * a['hip_abd']) @ rot_x(-a['hip_flex'])
            rot[:, J['knee_' + side]] = rot_x(a['knee'])
        return rot


def idle(pose, rng, s):
    """Relaxed standing with slow sway, so that no two frames are exactly still."""
    pose.root[:, 0] += drift(rng, s, 0.02)
    pose.root[:, 2] += drift(rng, s, 0.02)
    pose.nod += drift(rng, s, 6 * DEG)
    pose.twist += drift(rng, s, 5 * DEG)
    for side in ('l', 'r'):
        a = pose.side[side]
        a['sh_abd'] += 8 * DEG + drift(rng, s, 6 * DEG)
        a['sh_flex'] += drift(rng, s, 10 * DEG)
        a['elbow'] += 12 * DEG + drift(rng, s, 10 * DEG)
        a['hip_abd'] += 3 * DEG


# One recipe per class: adds its motion to `pose` (and `other`, the second person).
# d is the dominant side, o the other; amp scales amplitudes (~0.7..1.3).

def act_waving(p, rng, pose, d, o, amp, other=None):
    e = hold(p, 0.2, 0.2)
    cycles = rng.uniform(2, 5)
    osc = np.sin(2 * np.pi * cycles * p)
    a = pose.side[d]
    a['sh_abd'] += e * (amp * rng.uniform(110, 150) * DEG + 15 * DEG * osc)
    a['sh_flex'] += e * rng.uniform(0, 35) * DEG
    a['elbow'] += e * (rng.uniform(25, 55) * DEG + 20 * DEG * osc)


def act_clapping(p, rng, pose, d, o, amp, other=None):
    e = hold(p, 0.2, 0.2)
    cycles = rng.uniform(3, 7)
    meet = 0.5 + 0.5 * np.cos(2 * np.pi * cycles * p)
    flex = rng.uniform(55, 85) * DEG
    for side in ('l', 'r'):
        a = pose.side[side]
        a['sh_flex'] += e * flex
        a['elbow'] += e * rng.uniform(35, 60) * DEG
        a['sh_horiz'] += e * (15 * DEG + amp * 25 * DEG * meet)
        a['sh_abd'] -= e * 8 * DEG


def act_squatting(p, rng, pose, d, o, amp, other=None):
    e = bumps(p, rng.choice([1, 2]))
    depth = amp * rng.uniform(0.7, 1.0)
    for side in ('l', 'r'):
        a = pose.side[side]
        a['hip_flex'] += e * depth * 105 * DEG
        a['knee'] += e * depth * 125 * DEG
        a['sh_flex'] += e * rng.uniform(30, 80) * DEG
    pose.bow += e * rng.uniform(10, 30) * DEG


def act_jumping(p, rng, pose, d, o, amp, other=None):
    reps = rng.choice([1, 2, 3])
    q = (np.clip(p, 0, 0.999) * reps) % 1.0
    crouch = pulse(q, 0.2, 0.35) + pulse(q, 0.88, 0.24)
    air = np.where((q > 0.35) & (q < 0.75), np.sin(np.pi * (q - 0.35) / 0.4), 0.0)
    air = np.where((p > 0) & (p < 1), air, 0.0)
    crouch = np.where((p > 0) & (p < 1), crouch, 0.0)
    pose.airborne += air * amp * rng.uniform(0.12, 0.3)
    for side in ('l', 'r'):
        a = pose.side[side]
        a['hip_flex'] += crouch * 50 * DEG + air * 10 * DEG
        a['knee'] += crouch * 70 * DEG + air * 15 * DEG
        a['sh_flex'] += air * amp * rng.uniform(60, 150) * DEG - crouch * 25 * DEG
    pose.bow += crouch * 20 * DEG


def act_kicking(p, rng, pose, d, o, amp, other=None):
    reps = rng.choice([1, 2])
    leg = pose.side[d if rng.uniform() < 0.8 else o]
    e = sum(pulse(p, (i + 0.5) / reps, 0.5 / reps) for i in range(reps))
    extend = e ** 3
    leg['hip_flex'] += e * amp * rng.uniform(60, 95) * DEG
    leg['knee'] += e * 80 * DEG * (1 - extend)
    for side in ('l', 'r'):
        pose.side[side]['sh_abd'] += e * 25 * DEG
    pose.bow -= e * 12 * DEG


def act_punching(p, rng, pose, d, o, amp, other=None):
    guard = hold(p, 0.15, 0.15)
    for side in ('l', 'r'):
        a = pose.side[side]
        a['sh_flex'] += guard * 40 * DEG
        a['elbow'] += guard * 115 * DEG
        a['sh_abd'] -= guard * 5 * DEG
    reps = rng.choice([2, 3, 4])
    alternate = rng.uniform() < 0.5
    centers = np.linspace(0.2, 0.8, reps)
    for i, c in enumerate(centers):
        side = (d if i % 2 == 0 else o) if alternate else d
        g = pulse(p, c, rng.uniform(0.08, 0.14)) * amp
        a = pose.side[side]
        a['sh_flex'] += g * 50 * DEG
        a['elbow'] -= np.minimum(g, 1) * 105 * DEG
        pose.twist += g * (15 if side == 'l' else -15) * DEG


def act_bowing(p, rng, pose, d, o, amp, other=None):
    e = hold(p, 0.3, 0.3)
    depth = amp * rng.uniform(0.6, 1.0)
    pose.bow += e * depth * 35 * DEG
    pose.pitch += e * depth * 30 * DEG
    for side in ('l', 'r'):
        pose.side[side]['hip_flex'] -= e * depth * 30 * DEG
    pose.nod += e * 15 * DEG


def act_turning(p, rng, pose, d, o, amp, other=None):
    angle = rng.choice([-1, 1]) * rng.uniform(90, 180) * DEG
    pose.yaw += smoothstep(p) * angle
    steps = rng.uniform(2, 4)
    e = hold(p, 0.1, 0.1)
    step = np.sin(2 * np.pi * steps * p)
    for side, sign in (('l', 1), ('r', -1)):
        lift = np.maximum(sign * step, 0) * e
        pose.side[side]['hip_flex'] += lift * 25 * DEG
        pose.side[side]['knee'] += lift * 40 * DEG


def act_reaching(p, rng, pose, d, o, amp, other=None):
    e = hold(p, 0.35, 0.3)
    a = pose.side[d]
    a['sh_flex'] += e * amp * rng.uniform(120, 165) * DEG
    a['sh_abd'] += e * rng.uniform(-5, 25) * DEG
    a['elbow'] -= e * 8 * DEG
    pose.bow -= e * 6 * DEG
    pose.side[o]['sh_flex'] += e * rng.uniform(0, 40) * DEG


def act_sitting(p, rng, pose, d, o, amp, other=None):
    r = smoothstep(p / rng.uniform(0.5, 0.8))
    for side in ('l', 'r'):
        a = pose.side[side]
        a['hip_flex'] += r * rng.uniform(80, 95) * DEG
        a['knee'] += r * rng.uniform(80, 100) * DEG
        a['sh_flex'] += r * 30 * DEG
        a['elbow'] += r * 35 * DEG
    pose.bow += r * rng.uniform(5, 20) * DEG - bumps(p * 0.8, 1) * 10 * DEG


def act_picking_up(p, rng, pose, d, o, amp, other=None):
    e = hold(p, 0.3, 0.3)
    depth = amp * rng.uniform(0.7, 1.0)
    pose.bow += e * depth * 45 * DEG
    pose.pitch += e * depth * 20 * DEG
    for side in ('l', 'r'):
        pose.side[side]['hip_flex'] += e * depth * 25 * DEG
        pose.side[side]['knee'] += e * depth * 50 * DEG
    pose.side[d]['sh_flex'] += e * rng.uniform(50, 80) * DEG
    pose.side[d]['elbow'] -= e * 10 * DEG


def act_handshake(p, rng, pose, d, o, amp, other):
    for person in (pose, other):
        e = hold(p, 0.3, 0.25)
        a = person.side['r']
        cycles = rng.uniform(2, 4)
        a['sh_flex'] += e * (rng.uniform(40, 60) * DEG + 8 * DEG * np.sin(2 * np.pi * cycles * p))
        a['elbow'] += e * rng.uniform(25, 45) * DEG
        a['sh_horiz'] += e * 10 * DEG


def act_pushing(p, rng, pose, d, o, amp, other):
    t0 = rng.uniform(0.35, 0.55)
    push = pulse(p, t0, rng.uniform(0.2, 0.35)) * amp
    for side in ('l', 'r'):
        a = pose.side[side]
        a['sh_flex'] += np.minimum(push, 1) * 80 * DEG
        a['elbow'] += (1 - np.minimum(push, 1)) * hold(p, 0.2, 0.2) * 60 * DEG
    back = smoothstep((p - t0) / 0.3) * rng.uniform(0.25, 0.6)
    other.root[:, 2] -= back  # the other faces us; its local -z is away from the pusher
    react = pulse(p, t0 + 0.12, 0.3)
    other.bow -= react * 20 * DEG
    for side in ('l', 'r'):
        other.side[side]['sh_abd'] += react * 40 * DEG
    pose.bow += np.minimum(push, 1) * 10 * DEG


def act_hugging(p, rng, pose, d, o, amp, other):
    e = hold(p, 0.3, 0.25)
    for person in (pose, other):
        for side in ('l', 'r'):
            a = person.side[side]
            a['sh_flex'] += e * rng.uniform(70, 90) * DEG
            a['sh_horiz'] += e * 35 * DEG
            a['elbow'] += e * rng.uniform(50, 80) * DEG


def act_giving(p, rng, pose, d, o, amp, other):
    give = pulse(p, rng.uniform(0.35, 0.5), 0.45)
    take = pulse(p, rng.uniform(0.45, 0.6), 0.4)
    pose.side[d]['sh_flex'] += give * amp * rng.uniform(45, 70) * DEG
    pose.side[d]['elbow'] += give * 25 * DEG
    other.side['r']['sh_flex'] += take * rng.uniform(40, 65) * DEG
    other.side['r']['elbow'] += take * 30 * DEG


RECIPES = [act_waving, act_clapping, act_squatting, act_jumping, act_kicking, act_punching, act_bowing,
           act_turning, act_reaching, act_sitting, act_picking_up,
           act_handshake, act_pushing, act_hugging, act_giving]
# Typical length in frames at 30 fps before the speed factors.
BASE_FRAMES = [62, 62, 70, 66, 52, 58, 62, 70, 62, 76, 70, 76, 62, 80, 70]
# How far apart interacting persons stand at the start, and how much they close in.
APPROACH = {'handshake': (1.3, 0.4), 'pushing': (0.9, 0.15), 'hugging': (1.4, 0.9), 'giving an object': (1.4, 0.4)}
MIX_PROBABILITY = 0.8
FEET_STAY = {'squatting', 'sitting down', 'picking up', 'bowing', 'jumping'}


# ---- subjects, cameras, sensor ------------------------------------------------------------

def make_subjects(rng, count):
    subjects = []
    for _ in range(count):
        scale = rng.uniform(0.85, 1.12)
        group_scale = {g: scale * rng.uniform(0.95, 1.05) for g in ('torso', 'arm', 'leg')}
        subjects.append({
            'bone_scale': np.array([group_scale[g] for g in BONE_GROUP]),
            'right_handed': rng.uniform() < 0.85,
            'speed': rng.uniform(0.8, 1.25),
            'amp': rng.uniform(0.85, 1.15),
        })
    return subjects


def person_positions(pose, subject, feet_stay):
    pos = forward_kinematics(pose.local_rotations(), pose.root, subject['bone_scale'])
    ankles = pos[:, [J['ankle_l'], J['ankle_r'], J['foot_l'], J['foot_r']]]
    floor = -(0.06 + 0.42 + 0.40 + 0.05) * subject['bone_scale'][J['knee_l']]
    # Feet on the floor, unless airborne: shift so the lowest foot joint touches it.
    lift = floor - ankles[:, :, 1].min(1) + pose.airborne
    pos[:, :, 1] += lift[:, None]
    if feet_stay:  # Squats and sits move the hips back over planted feet.
        drift_z = ankles[:, :, 2].mean(1) - ankles[0, :, 2].mean()
        pos[:, :, 2] -= drift_z[:, None]
    return pos


def sample(rng, label, subject, partner):
    name = CLASSES[label]
    two = name in TWO_PERSON
    speed = subject['speed'] * rng.uniform(0.8, 1.25)
    frames = int(np.clip(round(BASE_FRAMES[label] * speed * rng.uniform(0.85, 1.2)), 35, 150))
    s = np.linspace(0, 1, frames)
    u0, u1 = rng.uniform(0, 0.15), rng.uniform(0.85, 1.0)
    p = (s - u0) / (u1 - u0)
    amp = subject['amp'] * rng.uniform(0.8, 1.2)
    d = 'r' if subject['right_handed'] else 'l'
    o = 'l' if d == 'r' else 'r'

    pose = Pose(frames)
    idle(pose, rng, s)
    other = None
    if two:
        other = Pose(frames)
        idle(other, rng, s)
        start, close = APPROACH[name]
        start *= rng.uniform(0.9, 1.1)
        approach = smoothstep(p / 0.35) * close * rng.uniform(0.8, 1.1)
        pose.root[:, 2] += approach / 2
        other.root[:, 2] += approach / 2
    RECIPES[label](p, rng, pose, d, o, amp, other)
    if rng.uniform() < MIX_PROBABILITY:
        # A weaker, partly overlapping second motion of another single-person class (people
        # fidget, gesture while they act); near-equal strengths make some samples ambiguous.
        mix = rng.choice([k for k in range(len(CLASSES)) if k != label and CLASSES[k] not in TWO_PERSON])
        v0 = rng.uniform(0, 0.5)
        extra = Pose(frames)
        RECIPES[mix]((s - v0) / rng.uniform(0.4, 1.0 - v0 + 1e-6), rng, extra, d, o, amp)
        pose.add(extra, rng.uniform(0.3, 1.0))

    people = [person_positions(pose, subject, name in FEET_STAY)]
    if two:
        # The partner stands `start` metres ahead, facing the actor.
        second = person_positions(other, partner, False)
        second = second @ rot_y(np.pi).T
        second[:, :, 2] += start
        people.append(second)
        # Interacting persons stand side by side in the camera's view.
        centre = np.array([0.0, 0.0, start / 2])
        people = [(x - centre) @ rot_y(np.pi / 2 * rng.choice([-1, 1])).T for x in people]

    # Camera: NTU's three views (-45, 0, +45 degrees) with jitter; persons face the camera (-z).
    view = rng.choice([-45, 0, 45]) + rng.uniform(-10, 10)
    cam = rot_x(rng.uniform(-8, 8) * DEG) @ rot_y((180 + view) * DEG)
    shift = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3), rng.uniform(2.6, 3.8)])
    noise = rng.uniform(0.004, 0.012)
    out = np.zeros((MAX_FRAMES, 2, NUM_JOINTS, 3), dtype=np.float32)
    for k, x in enumerate(people):
        x = x @ cam.T + shift
        x = x + rng.normal(0, noise, x.shape)
        hands = [J['hand_l'], J['hand_r'], J['handtip_l'], J['handtip_r'], J['thumb_l'], J['thumb_r']]
        x[:, hands] += rng.normal(0, noise, (frames, len(hands), 3))  # Kinect's hands are the noisiest
        if rng.uniform() < 0.4:  # tracking drops a distal joint for a few frames
            for _ in range(rng.integers(1, 4)):
                joint = rng.choice(hands + [J['foot_l'], J['foot_r'], J['head']])
                t0 = rng.integers(0, frames)
                x[t0:t0 + rng.integers(3, 20), joint] = 0
        out[:frames, k] = np.round(x * 1024) / 1024  # ~1 mm; binary steps leave low mantissa bytes zero, so it compresses
    return out.reshape(MAX_FRAMES, 2 * NUM_JOINTS * 3)


def make(seed, subjects, train_subjects, per_class_subject):
    rng = np.random.default_rng(seed)
    people = make_subjects(rng, subjects)
    order = rng.permutation(subjects)
    split = {'train': sorted(order[:train_subjects].tolist()), 'test': sorted(order[train_subjects:].tolist())}
    data = {}
    for part, ids in split.items():
        xs, ys, ss = [], [], []
        for sid in ids:
            for label in range(len(CLASSES)):
                for _ in range(per_class_subject):
                    partner = people[rng.choice([i for i in ids if i != sid])]
                    xs.append(sample(rng, label, people[sid], partner))
                    ys.append(label)
                    ss.append(sid)
        perm = rng.permutation(len(xs))
        data['x_' + part] = np.stack(xs)[perm]
        data['y_' + part] = np.eye(len(CLASSES), dtype=np.float32)[np.array(ys)[perm]]
        data['s_' + part] = np.array(ss, dtype=np.int32)[perm]
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default='media/samples/skeleton-actions.npz')
    ap.add_argument('--seed', type=int, default=20260501)
    ap.add_argument('--subjects', type=int, default=28)
    ap.add_argument('--train-subjects', type=int, default=19)
    ap.add_argument('--per-class-subject', type=int, default=3, help='samples per class and subject')
    args = ap.parse_args()
    data = make(args.seed, args.subjects, args.train_subjects, args.per_class_subject)
    tmp = args.out + '.tmp.npz'
    np.savez_compressed(tmp, **data)
    os.replace(tmp, args.out)
    with open(os.path.splitext(args.out)[0] + '.classes.json', 'w') as f:
        json.dump(CLASSES, f, indent=1)
    print(json.dumps({'out': args.out, 'bytes': os.path.getsize(args.out),
                      'train': data['x_train'].shape, 'test': data['x_test'].shape, 'classes': len(CLASSES)}))


if __name__ == '__main__':
    main()
