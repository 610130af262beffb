"""Re-export an already built family (hf/ checkpoint) with build.py's export() and check_export(), e.g. after a
patch in patches.py; updates SOURCE.json. usage: reexport.py ARCH_DIR ts|dynamo ..."""
import json, os, sys
import transformers as tf
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build  # noqa: E402
d = sys.argv[1]
model = tf.AutoModelForCausalLM.from_pretrained(os.path.join(d, 'hf'), attn_implementation='eager').eval()
src = os.path.join(d, 'SOURCE.json'); rec = json.load(open(src))
for exp in sys.argv[2:]:
    p = os.path.join(d, f'model.{exp}.onnx')
    rec.pop(f'{exp}_error', None); rec.pop(f'{exp}_maxdiff', None)
    try:
        build.export_moe_aware(model, p, exp == 'dynamo')
        rec[f'{exp}_maxdiff'] = build.check_export(model, p)
    except Exception as e:  # noqa: BLE001
        rec[f'{exp}_error'] = repr(e)[:400]
        if os.path.exists(p): os.remove(p)
    rec.setdefault('reexported', []).append(exp)
json.dump(rec, open(src, 'w'), indent=1)
print(d, {k: v for k, v in rec.items() if k.startswith(tuple(sys.argv[2:]))})
