// taste.cpp - gorc from C++: a class embedding gorc's sync types, goroutines started from
// captureless lambdas, and a channel. Built by tests/consumers/run through find_package(gorc).
#include <gorc.h>

#include <cstdio>

namespace {

class counter {
  public:
    void add(int n)
    {
        gorc_mutex_lock(&mu_);
        total_ += n;
        gorc_mutex_unlock(&mu_);
    }
    int total() const { return total_; }
    gorc_waitgroup wg{};

  private:
    gorc_mutex mu_{};
    int total_ = 0;
};

} // namespace

int main()
{
    static counter c;
    int rc = gorc_main(
        [](void *) {
            for (int i = 1; i <= 10; i++) {
                gorc_waitgroup_add(&c.wg, 1);
                gorc_go([](void *arg) {
                    c.add(static_cast<int>(reinterpret_cast<intptr_t>(arg)));
                    gorc_waitgroup_done(&c.wg);
                }, reinterpret_cast<void *>(static_cast<intptr_t>(i)));
            }
            gorc_waitgroup_wait(&c.wg);
        },
        nullptr);
    std::printf("C++ total %d, gorc %s\n", c.total(), gorc_version_string());
    return rc == 0 && c.total() == 55 ? 0 : 1;
}
