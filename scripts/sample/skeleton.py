"""The 25-joint NTU RGB+D (Kinect v2) skeleton and forward kinematics from joint angles.

Joint order is NTU's (0-based here; NTU's docs count from 1). Coordinates are metres in a
person-local frame: x to the person's left, y up, z forward. Bone lengths are those of an
adult of about 1.75 m; `bone_scale` stretches them per subject.
"""
import numpy as np

JOINTS = [
    'spine_base', 'spine_mid', 'neck', 'head',
    'shoulder_l', 'elbow_l', 'wrist_l', 'hand_l',
    'shoulder_r', 'elbow_r', 'wrist_r', 'hand_r',
    'hip_l', 'knee_l', 'ankle_l', 'foot_l',
    'hip_r', 'knee_r', 'ankle_r', 'foot_r',
    'spine_shoulder', 'handtip_l', 'thumb_l', 'handtip_r', 'thumb_r',
]
J = {name: i for i, name in enumerate(JOINTS)}
NUM_JOINTS = 25

# (joint, parent, rest offset from the parent in the parent's frame, bone group for scaling)
_BONES = [
    ('spine_mid', 'spine_base', (0.0, 0.26, 0.0), 'torso'),
    ('spine_shoulder', 'spine_mid', (0.0, 0.24, 0.0), 'torso'),
    ('neck', 'spine_shoulder', (0.0, 0.07, 0.0), 'torso'),
    ('head', 'neck', (0.0, 0.13, 0.01), 'torso'),
    ('shoulder_l', 'spine_shoulder', (0.17, -0.03, 0.0), 'torso'),
    ('elbow_l', 'shoulder_l', (0.0, -0.28, 0.0), 'arm'),
    ('wrist_l', 'elbow_l', (0.0, -0.25, 0.0), 'arm'),
    ('hand_l', 'wrist_l', (0.0, -0.07, 0.0), 'arm'),
    ('handtip_l', 'hand_l', (0.0, -0.07, 0.01), 'arm'),
    ('thumb_l', 'hand_l', (-0.01, -0.03, 0.04), 'arm'),
    ('shoulder_r', 'spine_shoulder', (-0.17, -0.03, 0.0), 'torso'),
    ('elbow_r', 'shoulder_r', (0.0, -0.28, 0.0), 'arm'),
    ('wrist_r', 'elbow_r', (0.0, -0.25, 0.0), 'arm'),
    ('hand_r', 'wrist_r', (0.0, -0.07, 0.0), 'arm'),
    ('handtip_r', 'hand_r', (0.0, -0.07, 0.01), 'arm'),
    ('thumb_r', 'hand_r', (0.01, -0.03, 0.04), 'arm'),
    ('hip_l', 'spine_base', (0.09, -0.06, 0.0), 'torso'),
    ('knee_l', 'hip_l', (0.0, -0.42, 0.0), 'leg'),
    ('ankle_l', 'knee_l', (0.0, -0.40, 0.0), 'leg'),
    ('foot_l', 'ankle_l', (0.0, -0.05, 0.11), 'leg'),
    ('hip_r', 'spine_base', (-0.09, -0.06, 0.0), 'torso'),
    ('knee_r', 'hip_r', (0.0, -0.42, 0.0), 'leg'),
    ('ankle_r', 'knee_r', (0.0, -0.40, 0.0), 'leg'),
    ('foot_r', 'ankle_r', (0.0, -0.05, 0.11), 'leg'),
]
PARENT = np.full(NUM_JOINTS, -1)
REST_OFFSET = np.zeros((NUM_JOINTS, 3))
BONE_GROUP = ['torso'] * NUM_JOINTS
for child, parent, offset, group in _BONES:
    PARENT[J[child]] = J[parent]
    REST_OFFSET[J[child]] = offset
    BONE_GROUP[J[child]] = group
# Parents come before children in this order, so one pass computes the chain.
FK_ORDER = [J[b[0]] for b in _BONES]


def rot_x(a):
    """Rotation about x for an array of angles (radians): shape (..., 3, 3)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a):
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a):
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def forward_kinematics(local_rot, root_pos, bone_scale):
    """Joint positions (T, 25, 3) from per-joint local rotations (T, 25, 3, 3), the root's
    position (T, 3) and per-joint bone scale (25,). A joint's local rotation turns the
    offsets of its children."""
    frames = local_rot.shape[0]
    glob = np.empty_like(local_rot)
    pos = np.empty((frames, NUM_JOINTS, 3))
    glob[:, 0] = local_rot[:, 0]
    pos[:, 0] = root_pos
    for j in FK_ORDER:
        p = PARENT[j]
        glob[:, j] = glob[:, p] @ local_rot[:, j]
        pos[:, j] = pos[:, p] + glob[:, p] @ (REST_OFFSET[j] * bone_scale[j])
    return pos
