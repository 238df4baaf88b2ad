import json, glob, os, statistics as st, sys
d = sys.argv[1] if len(sys.argv) > 1 else '/tmp/kq-e2e'
names = sorted({os.path.basename(f)[len('llama-'):].rsplit('-', 1)[0] for f in glob.glob(d + '/llama-*.json')})
print('| model | llama.cpp tg t/s | halyard before | halyard after | after / llama.cpp | after / before | rounds |')
print('|---|---:|---:|---:|---:|---:|---:|')
for n in names:
    ll, b, a = [], [], []
    for f in sorted(glob.glob(f'{d}/llama-{n}-*.json')):
        try:
            ll += [x['avg_ts'] for x in json.load(open(f)) if x['n_gen'] > 0]
        except Exception: pass
    for pre, lst in (('base', b), ('new', a)):
        for f in sorted(glob.glob(f'{d}/{pre}-{n}-*.json')):
            try:
                lst += [json.load(open(f))[0]['tg_tokens_per_s_median']]
            except Exception: pass
    if not (ll and b and a): continue
    L, B, A = st.median(ll), st.median(b), st.median(a)
    print(f'| {n} | {L:.2f} | {B:.2f} | {A:.2f} | {A/L:.2f}x | {A/B:.2f}x | {len(a)} |')
