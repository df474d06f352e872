// RAII owners for GObject references and GError values: no bare g_object_unref elsewhere.
#pragma once

#include <glib-object.h>

#include <utility>

namespace mgspool {

// Owns one reference to a GObject. adopt() takes a reference the caller already owns
// (from a *_new function or a parser result); retain() adds one to a borrowed pointer
// (from an accessor). Keeping the two apart is what prevents double unrefs and leaks.
template <typename T>
class GObjectPtr {
 public:
  GObjectPtr() = default;
  GObjectPtr(GObjectPtr&& other) noexcept : m_object(std::exchange(other.m_object, nullptr)) {}
  GObjectPtr& operator=(GObjectPtr&& other) noexcept {
    if (this != &other) {
      reset();
      m_object = std::exchange(other.m_object, nullptr);
    }
    return *this;
  }
  GObjectPtr(const GObjectPtr&) = delete;
  GObjectPtr& operator=(const GObjectPtr&) = delete;
  ~GObjectPtr() { reset(); }

  static GObjectPtr adopt(T* owned) {
    GObjectPtr pointer;
    pointer.m_object = owned;
    return pointer;
  }

  static GObjectPtr retain(T* borrowed) {
    GObjectPtr pointer;
    if (borrowed != nullptr) {
      g_object_ref(borrowed);
    }
    pointer.m_object = borrowed;
    return pointer;
  }

  T* get() const { return m_object; }
  explicit operator bool() const { return m_object != nullptr; }

  void reset() {
    if (m_object != nullptr) {
      g_object_unref(m_object);
      m_object = nullptr;
    }
  }

 private:
  T* m_object = nullptr;
};

// Owns a GError; pass out_pointer() to a GLib call that reports errors.
class GErrorPtr {
 public:
  GErrorPtr() = default;
  GErrorPtr(const GErrorPtr&) = delete;
  GErrorPtr& operator=(const GErrorPtr&) = delete;
  ~GErrorPtr() {
    if (m_error != nullptr) {
      g_error_free(m_error);
    }
  }

  GError** out_pointer() { return &m_error; }
  GError* get() const { return m_error; }
  explicit operator bool() const { return m_error != nullptr; }
  const char* message() const { return m_error != nullptr ? m_error->message : "unknown error"; }

 private:
  GError* m_error = nullptr;
};

}  // namespace mgspool
