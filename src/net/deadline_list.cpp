#include "meridian/net/deadline_list.hpp"

namespace meridian::net {

void Deadline::link(DeadlineList& list) {
  if (list_ != nullptr) return;
  list_ = &list;
  prev_ = nullptr;
  next_ = list.head_;
  if (list.head_ != nullptr) list.head_->prev_ = this;
  list.head_ = this;
  ++list.size_;
}

void Deadline::unlink() {
  if (list_ == nullptr) return;
  if (list_->cursor_ == this) list_->cursor_ = next_;
  if (prev_ != nullptr) {
    prev_->next_ = next_;
  } else {
    list_->head_ = next_;
  }
  if (next_ != nullptr) next_->prev_ = prev_;
  --list_->size_;
  list_ = nullptr;
  prev_ = next_ = nullptr;
}

void DeadlineList::sweep(Clock::time_point now) {
  cursor_ = head_;
  while (cursor_ != nullptr) {
    Deadline* d = cursor_;
    cursor_ = d->next_;
    if (d->when_ <= now) d->on_deadline();
  }
}

void DeadlineList::for_each(void (Deadline::*method)()) {
  cursor_ = head_;
  while (cursor_ != nullptr) {
    Deadline* d = cursor_;
    cursor_ = d->next_;
    (d->*method)();
  }
}

void DeadlineList::drain_all() {
  for_each(&Deadline::on_drain);
}

void DeadlineList::abort_all() {
  for_each(&Deadline::on_abort);
}

}  // namespace meridian::net
