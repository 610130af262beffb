"""After build.py: per family, reference.py, a padded check of ts/dynamo exports with check.py (dense mask), and
optionally KV-cache exports (export_past.py) with verify_past.py; results merged into SOURCE.json.
usage: post.py OUT_DIR family[:past[,fp16]] ..."""
import json, os, re, subprocess, sys
HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable


def run(args, timeout=900):
    p = subprocess.run([PY] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, p.stdout


out = sys.argv[1]
for spec in sys.argv[2:]:
    fam, _, opts = spec.partition(':')
    opts = opts.split(',') if opts else []
    d = os.path.join(out, fam)
    src = os.path.join(d, 'SOURCE.json')
    rec = json.load(open(src))
    BUILD = ('arch', 'transformers', 'torch', 'params', 'train_loss', 'ts_maxdiff', 'dynamo_maxdiff', 'ts_error',
             'dynamo_error', 'build_error', 'seconds')
    rec = {k: v for k, v in rec.items() if k in BUILD or (k.startswith('ts-past') and not any(o in ('past', 'fp16') for o in opts))}
    rc, log, so = run([os.path.join(HERE, 'reference.py'), d])
    rec['reference'] = 'ok' if rc == 0 and os.path.exists(os.path.join(d, 'reference.json')) else log[-400:]
    for exp in ('ts', 'dynamo'):
        p = os.path.join(d, f'model.{exp}.onnx')
        if os.path.exists(p):
            rc, log, so = run([os.path.join(HERE, 'check.py'), d, p, '1' * 6])
            try:
                rec[f'{exp}_padded_check_maxdiff'] = json.loads(so.strip().splitlines()[-1])['maxdiff']
            except Exception:  # noqa: BLE001
                rec[f'{exp}_padded_check_error'] = log[-300:]
    for kind in [o for o in opts if o in ('past', 'fp16')]:
        name = 'ts-past' if kind == 'past' else 'ts-past-fp16'
        p = os.path.join(d, f'model.{name}.onnx')
        rc, log, so = run([os.path.join(HERE, 'export_past.py'), d, p, 'float16' if kind == 'fp16' else 'float32'])
        m = re.search(r'export ok .* prefill maxdiff (\S+) decode maxdiff (\S+)', log)
        tol = 2e-2 if kind == 'fp16' else 1e-4
        if rc != 0 or not m:
            rec[f'{name}_error'] = log.strip()[-400:]
            if os.path.exists(p): os.remove(p)
            continue
        diff = max(float(m.group(1)), float(m.group(2)))
        rc, log, so = run([os.path.join(HERE, 'verify_past.py'), d, p])
        try:
            v = json.loads(so.strip().splitlines()[-1])
        except Exception:  # noqa: BLE001
            v = {'error': log[-300:]}
        rec[f'{name}_verify'] = v
        if diff > tol:
            rec[f'{name}_error'] = f'maxdiff {diff} > {tol}'
            os.remove(p)
            continue
        rec[f'{name}_maxdiff'] = diff
    json.dump(rec, open(src, 'w'), indent=1)
    print(fam, json.dumps({k: v for k, v in rec.items() if k not in ('transformers', 'torch', 'arch')}), flush=True)
