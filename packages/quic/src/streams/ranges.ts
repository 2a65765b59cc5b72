/**
 * A set of byte ranges [start, end) kept sorted, disjoint and merged (adjacent ranges join), in two
 * parallel number arrays. Used for acknowledged and lost stream data.
 */
export class RangeSet {
  private s: number[] = [];
  private e: number[] = [];

  get count(): number {
    return this.s.length;
  }
  get isEmpty(): boolean {
    return this.s.length === 0;
  }
  start(i: number): number {
    return this.s[i]!;
  }
  end(i: number): number {
    return this.e[i]!;
  }
  /** Total bytes covered. */
  size(): number {
    let n = 0;
    for (let i = 0; i < this.s.length; i++) n += this.e[i]! - this.s[i]!;
    return n;
  }

  // Array edits without splice (which allocates the removed elements).
  private removeAt(i: number, k: number): void {
    const n = this.s.length;
    for (let j = i; j + k < n; j++) {
      this.s[j] = this.s[j + k]!;
      this.e[j] = this.e[j + k]!;
    }
    this.s.length = n - k;
    this.e.length = n - k;
  }

  private insertAt(i: number, start: number, end: number): void {
    this.s.push(0);
    this.e.push(0);
    for (let j = this.s.length - 1; j > i; j--) {
      this.s[j] = this.s[j - 1]!;
      this.e[j] = this.e[j - 1]!;
    }
    this.s[i] = start;
    this.e[i] = end;
  }

  // First index whose end >= x (ranges touching or after x).
  private lowerByEnd(x: number): number {
    let a = 0, b = this.s.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (this.e[m]! < x) a = m + 1;
      else b = m;
    }
    return a;
  }

  add(start: number, end: number): void {
    if (end <= start) return;
    const n = this.s.length;
    if (n === 0 || start > this.e[n - 1]!) {
      this.s.push(start);
      this.e.push(end);
      return;
    }
    const i = this.lowerByEnd(start);
    let j = i;
    let ns = start, ne = end;
    while (j < n && this.s[j]! <= end) {
      if (this.s[j]! < ns) ns = this.s[j]!;
      if (this.e[j]! > ne) ne = this.e[j]!;
      j++;
    }
    if (j === i) this.insertAt(i, ns, ne);
    else {
      this.s[i] = ns;
      this.e[i] = ne;
      if (j > i + 1) this.removeAt(i + 1, j - i - 1);
    }
  }

  subtract(start: number, end: number): void {
    if (end <= start) return;
    let i = this.lowerByEnd(start + 1); // ranges with end > start
    while (i < this.s.length && this.s[i]! < end) {
      const rs = this.s[i]!, re = this.e[i]!;
      if (rs < start && re > end) {
        // split
        this.e[i] = start;
        this.insertAt(i + 1, end, re);
        return;
      }
      if (rs < start) {
        this.e[i] = start;
        i++;
      } else if (re > end) {
        this.s[i] = end;
        return;
      } else this.removeAt(i, 1);
    }
  }

  /** True if [start, end) is entirely covered. */
  contains(start: number, end: number): boolean {
    if (end <= start) return true;
    const i = this.lowerByEnd(start + 1);
    return i < this.s.length && this.s[i]! <= start && this.e[i]! >= end;
  }

  /** If a range covers `x`, the end of that range; else `x`. */
  coveredEnd(x: number): number {
    const i = this.lowerByEnd(x + 1);
    return i < this.s.length && this.s[i]! <= x ? this.e[i]! : x;
  }

  /** Drops everything below `x`. */
  dropBelow(x: number): void {
    let k = 0;
    while (k < this.s.length && this.e[k]! <= x) k++;
    if (k > 0) this.removeAt(0, k);
    if (this.s.length && this.s[0]! < x) this.s[0] = x;
  }

  clear(): void {
    this.s.length = 0;
    this.e.length = 0;
  }
}
