# Checkpoints whose pickle runs code when Python unpickles it. Usage: malicious_pickles.py OUT_DIR
# Each payload would create its own marker file; before writing the case, this script proves the
# payload is live by unpickling it with Python's pickle in a child process (the marker appears),
# then deletes the marker. Writes <case>.pt (a torch-style zip) and cases.json:
#   {case: {"file", "marker", "names": the global the refusal must name, "live": true}}
import io, json, os, pickle, subprocess, sys, zipfile
import torch

out = sys.argv[1]
cases = {}


def marker(name):
    return os.path.join(out, f'RAN-{name}')


class Reduce:
    """An object whose unpickling calls fn(*args)."""
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def touch(path):
    return f"open({path!r}, 'w').write('ran')"


def as_zip(name, pkl, whole=None):
    path = os.path.join(out, f'{name}.pt')
    if whole is not None:  # a checkpoint exactly as torch.save wrote it
        with open(path, 'wb') as f:
            f.write(whole)
        return path
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        z.writestr(f'{name}/data.pkl', pkl)
        z.writestr(f'{name}/version', '3\n')
    return path


def add(name, pkl, names, live_check='pickle', whole=None):
    """live_check: 'pickle' (pickle.loads the bytes), 'torch' (torch.load the zip) or None."""
    mark = marker(name)
    path = as_zip(name, pkl, whole)
    live = None
    if live_check:
        raw = os.path.join(out, f'{name}.pkl')
        with open(raw, 'wb') as f:
            f.write(pkl)
        code = ('import pickle,sys; pickle.loads(open(sys.argv[1],"rb").read())' if live_check == 'pickle'
                else 'import torch,sys; torch.load(sys.argv[2])')
        subprocess.run([sys.executable, '-c', code, raw, path], capture_output=True, check=False)
        live = os.path.exists(mark)
        if live:
            os.remove(mark)
        os.remove(raw)
    cases[name] = {'file': path, 'marker': mark, 'names': names, 'live': live}


# os.system: pickled as posix.system on Linux.
add('os_system', pickle.dumps(Reduce(os.system, f'touch {marker("os_system")}'), protocol=2), 'posix.system')
# builtins.eval in protocol 2 (written __builtin__.eval) and protocol 4 (STACK_GLOBAL builtins.eval).
add('eval_p2', pickle.dumps(Reduce(eval, touch(marker('eval_p2'))), protocol=2), '__builtin__.eval')
add('eval_p4', pickle.dumps(Reduce(eval, touch(marker('eval_p4'))), protocol=4), 'builtins.eval')
add('exec_p5', pickle.dumps(Reduce(exec, touch(marker('exec_p5'))), protocol=5), 'builtins.exec')
# subprocess.
add('subprocess', pickle.dumps(Reduce(subprocess.check_call, ['touch', marker('subprocess')]), protocol=4), 'subprocess.check_call')
# Protocol-0 INST and OBJ: the class is called directly, no REDUCE.
add('inst', f"(S'touch {marker('inst')}'\nios\nsystem\n.".encode(), 'os.system')
add('obj', f"(cos\nsystem\nS'touch {marker('obj')}'\no.".encode(), 'os.system')
# Hidden in a real torch.save of a state dict next to a genuine tensor.
buf = io.BytesIO()
torch.save({'layer.weight': torch.randn(4, 4), 'evil': Reduce(os.system, f'touch {marker("in_state_dict")}')}, buf)
with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
    pkl = z.read([n for n in z.namelist() if n.endswith('data.pkl')][0])
add('in_state_dict', pkl, 'posix.system', live_check='torch', whole=buf.getvalue())
# A tensor-rebuild global whose argument hides the call.
add('nested_arg', pickle.dumps(Reduce(torch._utils._rebuild_parameter, Reduce(os.system, f'touch {marker("nested_arg")}'), False, None), protocol=2), 'posix.system')
# REDUCE on an allowed name that is not a function (a storage type), BUILD on a list: refused, not executable.
add('reduce_storage_type', b'\x80\x02ctorch\nFloatStorage\n)R.', 'torch.FloatStorage', live_check=None)
add('build_list', b'\x80\x02]}b.', 'BUILD', live_check=None)

json.dump(cases, open(os.path.join(out, 'cases.json'), 'w'), indent=1)
