import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { TokenAuthority } from '../src/token.js';

for (const p of providers) {
  test(`${p.name}: retry token round trip binds address, ODCID and expiry`, () => {
    const ta = new TokenAuthority(p);
    const odcid = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const rscid = new Uint8Array([9, 9, 9, 9]);
    const t = ta.retryToken('127.0.0.1:5000', odcid, rscid, 1000);
    const v = ta.validate(t, '127.0.0.1:5000', '127.0.0.1', 2000);
    assert.ok(v !== null && typeof v === 'object', 'retry token must validate');
    if (v !== null && typeof v === 'object') {
      assert.equal([...v.originalDcid], [...odcid]);
      assert.equal([...v.retryScid], [...rscid]);
    }
    assert.is(ta.validate(t, '127.0.0.1:5001', '127.0.0.1', 2000), null); // other port
    assert.is(ta.validate(t, '127.0.0.1:5000', '127.0.0.1', 20_000), null); // expired
    assert.is(ta.validate(t, '127.0.0.1:5000', '127.0.0.1', 500), null); // from the future
    const bad = t.slice();
    bad[bad.length - 1]! ^= 1;
    assert.is(ta.validate(bad, '127.0.0.1:5000', '127.0.0.1', 2000), null);
    assert.is(new TokenAuthority(p).validate(t, '127.0.0.1:5000', '127.0.0.1', 2000), null); // other key
  });

  test(`${p.name}: NEW_TOKEN tokens bind only the IP`, () => {
    const ta = new TokenAuthority(p);
    const t = ta.newToken('::1', 0);
    assert.is(ta.validate(t, '[::1]:1', '::1', 1000), 'new-token');
    assert.is(ta.validate(t, '[::1]:1', '::2', 1000), null);
    assert.is(ta.validate(t, '[::1]:1', '::1', 25 * 3600_000), null);
  });

  test(`${p.name}: a used NEW_TOKEN token does not validate again (§8.1.4); the record is bounded and expires`, () => {
    const ta = new TokenAuthority(p, { newTokenLifetimeMs: 10_000, newTokenMemory: 3 });
    const t1 = ta.newToken('10.0.0.1', 0);
    const t2 = ta.newToken('10.0.0.1', 0);
    assert.is(ta.validate(t1, '10.0.0.1:1', '10.0.0.1', 100), 'new-token', 'validating alone does not use it up');
    ta.useNewToken(t1, 100);
    assert.is(ta.validate(t1, '10.0.0.1:1', '10.0.0.1', 200), null, 'used: no second connection');
    assert.is(ta.validate(t2, '10.0.0.1:1', '10.0.0.1', 200), 'new-token', 'another token of the same client still works');
    // Bounded: a fourth record drops the oldest (t1), which could then be used once more.
    const more = [0, 1, 2].map(() => ta.newToken('10.0.0.1', 0));
    for (const t of more) ta.useNewToken(t, 300);
    assert.is(ta.usedNewTokenCount, 3);
    assert.is(ta.validate(t1, '10.0.0.1:1', '10.0.0.1', 400), 'new-token');
    assert.is(ta.validate(more[2]!, '10.0.0.1:1', '10.0.0.1', 400), null);
    // Records go once their token has surely expired.
    ta.useNewToken(t2, 10_301);
    assert.is(ta.usedNewTokenCount, 1);
    assert.is(ta.validate(t2, '10.0.0.1:1', '10.0.0.1', 10_301), null);
  });

  test(`${p.name}: tokens are bound to the QUIC version they were issued under (RFC 9369 §5)`, () => {
    const ta = new TokenAuthority(p);
    const V2 = 0x6b3343cf;
    const nt = ta.newToken('127.0.0.1', 1000, V2);
    assert.is(ta.validate(nt, '127.0.0.1:5000', '127.0.0.1', 2000, 1), null, 'a v2 NEW_TOKEN token on a v1 Initial');
    assert.is(ta.validate(nt, '127.0.0.1:5000', '127.0.0.1', 2000, V2), 'new-token');
    const rt = ta.retryToken('127.0.0.1:5000', new Uint8Array(8), new Uint8Array(8), 1000, 1);
    assert.is(ta.validate(rt, '127.0.0.1:5000', '127.0.0.1', 2000, V2), null, 'a v1 Retry token on a v2 Initial');
    assert.ok(ta.validate(rt, '127.0.0.1:5000', '127.0.0.1', 2000, 1));
  });

  test(`${p.name}: garbage tokens are invalid, never a throw`, () => {
    const ta = new TokenAuthority(p);
    for (let n = 0; n < 200; n++) {
      const g = p.randomBytes(n % 90);
      assert.is(ta.validate(g, 'a', 'a', 0), null);
    }
  });

  test(`${p.name}: stateless reset tokens are deterministic per CID and key`, () => {
    const ta = new TokenAuthority(p);
    const a = ta.resetToken(new Uint8Array([1, 2, 3]));
    assert.is(a.length, 16);
    assert.equal([...ta.resetToken(new Uint8Array([1, 2, 3]))], [...a]);
    assert.not.equal([...ta.resetToken(new Uint8Array([1, 2, 4]))], [...a]);
  });
}

test.run();
