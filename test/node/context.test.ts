import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClock } from '../helpers.js';
import { capabilityContext } from '../support/context.js';

describe('the node context', () => {
  it('runs after-commit effects once the outermost transaction commits, in order', () => {
    const { ctx } = capabilityContext('context-commit', new TestClock());
    const ran: string[] = [];
    ctx.transaction(() => {
      ctx.afterCommit(() => ran.push('a'));
      ctx.transaction(() => ctx.afterCommit(() => ran.push('b')));
      assert.deepEqual(ran, [], 'nothing runs before the commit');
    });
    assert.deepEqual(ran, ['a', 'b']);
    ctx.afterCommit(() => ran.push('now'));
    assert.deepEqual(ran, ['a', 'b', 'now'], 'outside a transaction an effect runs at once');
  });

  it('drops the effects of what rolls back, and only those', () => {
    const { ctx } = capabilityContext('context-rollback', new TestClock());
    const ran: string[] = [];
    ctx.transaction(() => {
      ctx.afterCommit(() => ran.push('kept'));
      assert.throws(() =>
        ctx.transaction(() => {
          ctx.settings.set('inner', '1');
          ctx.afterCommit(() => ran.push('inner'));
          throw new Error('refused');
        }),
      );
      ctx.settings.set('outer', '1');
    });
    assert.deepEqual(ran, ['kept']);
    assert.equal(ctx.settings.get('inner'), undefined, 'the savepoint rolled back');
    assert.equal(ctx.settings.get('outer'), '1');
    assert.throws(() =>
      ctx.transaction(() => {
        ctx.afterCommit(() => ran.push('lost'));
        ctx.settings.set('lost', '1');
        throw new Error('refused');
      }),
    );
    assert.deepEqual(ran, ['kept']);
    assert.equal(ctx.settings.get('lost'), undefined);
  });
});
