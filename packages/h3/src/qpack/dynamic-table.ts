/**
 * The QPACK dynamic table (RFC 9204 §3.2): a FIFO of entries addressed by absolute index (0 for the
 * first entry ever inserted). Size of an entry = name bytes + value bytes + 32 (§3.2.1).
 * Eviction policy is the caller's: {@link DynamicTable.canMakeRoom} asks a predicate whether the
 * oldest entries may go (the encoder refuses to evict referenced or unacknowledged entries).
 */

export interface TableEntry {
  readonly name: string;
  readonly value: string;
  /** name.length + value.length in bytes + 32. */
  readonly size: number;
  /** Length of the name in bytes (as received on the wire). */
  readonly nameSize: number;
}

export const ENTRY_OVERHEAD = 32;

export class DynamicTable {
  /** Entries still in the table; entries[i] has absolute index `dropped + i`. */
  private entries: TableEntry[] = [];
  private head = 0;
  /** Number of entries evicted so far = absolute index of the oldest entry. */
  dropped = 0;
  size = 0;
  capacity = 0;

  /** Total number of insertions (the Insert Count). */
  get insertCount(): number {
    return this.dropped + this.length;
  }

  get length(): number {
    return this.entries.length - this.head;
  }

  /** Entry by absolute index, or undefined if evicted or not yet inserted. */
  get(abs: number): TableEntry | undefined {
    if (abs < this.dropped || abs >= this.insertCount) return undefined;
    return this.entries[this.head + abs - this.dropped];
  }

  /**
   * Whether `size` bytes fit after evicting only entries for which `evictable(abs)` is true
   * (oldest first, stopping at the first that is not).
   */
  canMakeRoom(size: number, evictable: (abs: number) => boolean): boolean {
    if (size > this.capacity) return false;
    let free = this.capacity - this.size;
    let abs = this.dropped;
    while (free < size) {
      if (abs >= this.insertCount || !evictable(abs)) return false;
      free += this.get(abs)!.size;
      abs++;
    }
    return true;
  }

  /** Number of oldest entries that inserting `size` bytes would evict (assumes it fits). */
  evictionsFor(size: number): number {
    let free = this.capacity - this.size;
    let n = 0;
    while (free < size && n < this.length) {
      free += this.get(this.dropped + n)!.size;
      n++;
    }
    return n;
  }

  private evictOne(): void {
    const e = this.entries[this.head]!;
    this.head++;
    this.dropped++;
    this.size -= e.size;
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Evicts until `size` more bytes fit. Caller has checked that the entry fits the capacity. */
  insert(entry: TableEntry): void {
    while (this.size + entry.size > this.capacity) this.evictOne();
    this.entries.push(entry);
    this.size += entry.size;
  }

  /** Sets the capacity, evicting as needed (caller has checked evictability). */
  setCapacity(capacity: number): void {
    this.capacity = capacity;
    while (this.size > capacity) this.evictOne();
  }

  /** Newest absolute index with this name and value (and newest with this name), or -1. */
  find(name: string, value: string): { exact: number; name: number } {
    let nameIdx = -1;
    for (let i = this.entries.length - 1; i >= this.head; i--) {
      const e = this.entries[i]!;
      if (e.name !== name) continue;
      const abs = this.dropped + i - this.head;
      if (e.value === value) return { exact: abs, name: nameIdx === -1 ? abs : nameIdx };
      if (nameIdx === -1) nameIdx = abs;
    }
    return { exact: -1, name: nameIdx };
  }
}
