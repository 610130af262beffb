"""Independent check of a pruned ONNX model against the Hugging Face original with the same units removed.

usage: python check.py ARCH_DIR PRUNED.onnx MASK [sublayer]
  MASK: one char per unit, 1 kept / 0 removed; length L = whole layers, 2L = attn0,mlp0,attn1,mlp1,...
  (or a path to a run folder whose mask.json / report.json holds it).
Prints max |logit difference| over a batch with padding; exit 1 when above 1e-3.
"""
import copy, json, os, sys
import numpy as np
import torch
import transformers as tf

ATTN_OUT = ('self_attn.o_proj', 'self_attention.dense', 'attention.dense', 'attn.c_proj', 'self_attn.dense',
            'self_attn.out_proj', 'attn.out_proj')  # attn.out_proj: gptj
MLP_OUT = ('mlp.down_proj', 'mlp.dense_4h_to_h', 'mlp.c_proj', 'mlp.fc2', 'fc2', 'mlp.fc_out')  # mlp.fc_out: gptj


def layers_of(model):
    for path in ('model.layers', 'transformer.h', 'gpt_neox.layers', 'model.decoder.layers'):
        obj = model
        try:
            for p in path.split('.'):
                obj = getattr(obj, p)
            return path, obj
        except AttributeError:
            continue
    raise SystemExit('no layer list found')


def zero(layer, names):
    for n in names:
        mod = layer
        try:
            for p in n.split('.'):
                mod = getattr(mod, p)
        except AttributeError:
            continue
        with torch.no_grad():
            mod.weight.zero_()
            if getattr(mod, 'bias', None) is not None:
                mod.bias.zero_()
        return n
    raise SystemExit(f'no output projection among {names}')


def zero_mlp(layer):
    """MLP sub-block removal. MoE (mixtral, qwen2_moe): every expert's down projection (transformers 5 keeps the
    experts fused as one [experts, hidden, inter] parameter `mlp.experts.down_proj`) and the shared expert's down
    projection are zeroed, so the block adds nothing. Otherwise the dense MLP's output projection (and bias)."""
    experts = getattr(getattr(layer, 'mlp', None), 'experts', None)
    if experts is None:
        return zero(layer, MLP_OUT)
    with torch.no_grad():
        if isinstance(experts, torch.nn.ModuleList):  # older layout: one module per expert
            for e in experts:
                for n in ('down_proj', 'w2', 'fc2'):
                    if hasattr(e, n):
                        getattr(e, n).weight.zero_()
                        if getattr(getattr(e, n), 'bias', None) is not None:
                            getattr(e, n).bias.zero_()
                        break
                else:
                    raise SystemExit('no expert output projection found')
        else:
            experts.down_proj.zero_()
            if getattr(experts, 'down_proj_bias', None) is not None:
                experts.down_proj_bias.zero_()
    shared = getattr(layer.mlp, 'shared_expert', None) or getattr(layer.mlp, 'shared_experts', None)
    if shared is not None:
        zero(shared, ('down_proj',))
    return 'mlp.experts.down_proj'


def apply(model, mask):
    path, layers = layers_of(model)
    n = len(layers)
    if len(mask) == n:
        keep = [l for l, m in zip(layers, mask) if m == '1']
        parent = model
        for p in path.split('.')[:-1]:
            parent = getattr(parent, p)
        setattr(parent, path.split('.')[-1], torch.nn.ModuleList(keep))
        for attr in ('num_hidden_layers', 'n_layer'):
            if hasattr(model.config, attr):
                setattr(model.config, attr, len(keep))
        if getattr(model.config, 'layer_types', None):
            model.config.layer_types = [t for t, m in zip(model.config.layer_types, mask) if m == '1']
    elif len(mask) == 2 * n:
        for i, layer in enumerate(layers):
            if mask[2 * i] == '0':
                zero(layer, ATTN_OUT)
            if mask[2 * i + 1] == '0':
                zero_mlp(layer)
    else:
        raise SystemExit(f'mask length {len(mask)} fits neither {n} layers nor {2 * n} sub-blocks')


def read_mask(arg):
    if not os.path.isdir(arg):
        return arg
    for f in ('mask.json', 'report.json'):
        p = os.path.join(arg, f)
        if os.path.exists(p):
            j = json.load(open(p))
            m = j.get('mask') or j.get('result', {}).get('mask') or j
            if isinstance(m, dict):
                m = m.get('bits') or m.get('keep') or m.get('mask')
            if isinstance(m, list):
                m = ''.join('1' if b in (1, True, '1') else '0' for b in m)
            return m
    raise SystemExit('no mask found in ' + arg)


def main():
    arch_dir, onnx_path, mask_arg = sys.argv[1:4]
    mask = read_mask(mask_arg)
    model = tf.AutoModelForCausalLM.from_pretrained(os.path.join(arch_dir, 'hf'), attn_implementation='eager').eval()
    n_layers = len(layers_of(model)[1])
    if sys.argv[4:5] == ['sublayer'] and len(mask) != 2 * n_layers:
        print(json.dumps({'arch_dir': arch_dir, 'mask': mask, 'ok': False,
                          'why': f'sublayer run gave {len(mask)} units for {n_layers} layers (want {2 * n_layers})'}))
        sys.exit(1)
    apply(model, mask)
    import onnxruntime as ort
    sess = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    names = [i.name for i in sess.get_inputs()]
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 512, (3, 41), generator=g)
    att = torch.ones_like(ids)
    att[1, :7] = 0  # left padding in one row
    feed = {'input_ids': ids.numpy(), 'attention_mask': att.numpy()}
    if 'position_ids' in names:
        feed['position_ids'] = torch.arange(ids.shape[1]).expand_as(ids).numpy()  # as the reference (no position_ids)
    fp16 = False
    for i in sess.get_inputs():
        if i.name.startswith('past_key_values'):
            dt = np.float16 if 'float16' in i.type else np.float32
            fp16 = fp16 or dt == np.float16
            shape = [ids.shape[0] if j == 0 else (0 if j == 2 else d) for j, d in enumerate(i.shape)]
            feed[i.name] = np.zeros(shape, dt)
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=att, use_cache=False).logits.numpy()
    got = sess.run(['logits'], {k: v for k, v in feed.items() if k in names})[0].astype(np.float32)
    valid = att.numpy().astype(bool)
    diff = float(np.abs(ref - got)[valid].max())
    tol = 5e-2 if fp16 else 1e-3
    print(json.dumps({'arch_dir': arch_dir, 'mask': mask, 'maxdiff': diff, 'tol': tol, 'ok': diff < tol}))
    sys.exit(0 if diff < tol else 1)


if __name__ == '__main__':
    main()
